//! Serving clients: peer-credential check on every connection, the connection cap, a thread
//! per connection, and a graceful drain at shutdown. Who waits for clients and how a new one
//! is taken is `threads`; accepting and admitting one is `accept`.
//!
//! The cap. At most `max_connections` clients are served at once. When a new client
//! arrives at the cap, one connection is closed to make room:
//! 1. the one whose partial frame has waited longest — a real client sends a whole frame in
//!    microseconds, so a frame still incomplete after others began is a slow or hostile
//!    sender, and a flood of half-sent frames must not hold every slot until the frame
//!    timeout (and again right after);
//! 2. otherwise the one idle (between requests) the longest — an idle client loses nothing
//!    but its socket, and a flood of idle connections can never lock out a real request.
//!
//! Only when every connection is busy with a whole request (being dispatched or answered)
//! is the newcomer refused with `RATE_LIMIT_EXCEEDED`.
//!
//! Reaching a blocked connection. Each connection thread sits in a blocking `read`; the
//! registry knows its socket's descriptor so the server can shut the socket down: the
//! whole of it to evict, the reading side at shutdown (the request in flight is still
//! answered, the next read ends the connection); see `registry`. Stopping closes the wake
//! pipe every waiting thread watches beside the listener, so they all end.

mod accept;
mod threads;

use crate::state::AgentState;
use accept::Acceptor;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long connections get to finish their current request at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The running server.
#[derive(Debug)]
pub struct Server {
    /// Closing it wakes every waiting thread to end.
    wake: OwnedFd,
    acceptor: Arc<Acceptor>,
}

impl Server {
    /// Starts accepting on `listener`, on a thread of its own and the ones it adds.
    pub fn start(listener: UnixListener, state: Arc<AgentState>) -> std::io::Result<Self> {
        // Close-on-exec: a `-- CMD` child holding the write end would keep the server from
        // ever seeing it close (the agent could not stop) and could wake it at will.
        let (wake_read, wake) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let acceptor = Arc::new(Acceptor::new(listener, wake_read, state));
        threads::spawn_thread(&acceptor, None)?;
        Ok(Self { wake, acceptor })
    }

    /// Stops accepting, lets connections finish the request in flight (for `drain` at
    /// most), and returns once every connection thread has ended (within the same bound).
    pub fn stop(self, drain: Duration) {
        let deadline = Instant::now() + drain;
        drop(self.wake);
        // From here no connection is admitted, so none escapes.
        let registry = self.acceptor.registry();
        registry.stop_reading();
        let left = registry.wait_empty(drain);
        if left > 0 {
            tracing::warn!(left, "connections did not finish in time");
        }
        let live = Arc::clone(self.acceptor.live());
        drop(self.acceptor);
        let threads = live.wait_none(deadline);
        if threads > 0 {
            tracing::warn!(threads, "connection threads did not end in time");
        }
    }
}
