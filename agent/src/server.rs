//! The accept loop: peer-credential check on every connection, the connection cap, a
//! thread per connection, and a graceful drain at shutdown.
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
//! answered, the next read ends the thread); see `registry`.

use crate::audit::Peer;
use crate::connection::{self, Connection};
use crate::registry::Registry;
use crate::state::AgentState;
use avp_protocol::{ErrorCode, ErrorResponse, Response, frame};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long connections get to finish their current request at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Stack of a connection thread: decoding and dispatch need little, and 256 of them must
/// stay cheap.
const CONNECTION_STACK: usize = 256 << 10;

/// Who is calling: uid and pid from `SO_PEERCRED`, the executable from `/proc`.
fn peer_of(stream: &UnixStream) -> Option<Peer> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(stream, PeerCredentials).ok()?;
    let pid = Some(cred.pid()).filter(|&pid| pid > 0);
    let exe = pid.and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    Some(Peer {
        uid: cred.uid(),
        pid,
        exe,
    })
}

/// Answers an error and closes, for connections refused before `Hello`. The answer is
/// small enough for the socket buffer, and the write is bounded anyway, so a peer that
/// does not read cannot stall the accept loop.
fn refuse(
    state: &AgentState,
    mut stream: UnixStream,
    peer: &Peer,
    code: ErrorCode,
    message: String,
) {
    if let Some(audit) = &state.audit {
        audit.record(peer, "CONNECT", None, None, Err(code));
    }
    let response = Response::Error(ErrorResponse::new(code, message));
    // In the client's codec when its first byte is already here (PROTOCOL.md §12.1.2).
    let answer = connection::refusal(&stream, &response).or_else(|| frame::encode(&response).ok());
    if let Some(bytes) = answer {
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = stream.write_all(&bytes);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// The running accept loop.
#[derive(Debug)]
pub struct Server {
    thread: JoinHandle<()>,
    /// Writing to it (or closing it) wakes the accept loop to stop.
    wake: OwnedFd,
    registry: Arc<Registry>,
}

impl Server {
    /// Starts accepting on `listener` on a thread of its own.
    pub fn start(listener: UnixListener, state: Arc<AgentState>) -> std::io::Result<Self> {
        // Close-on-exec: a `-- CMD` child holding the write end would keep the accept loop
        // from ever seeing it close (the agent could not stop) and could wake it at will.
        let (wake_read, wake) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let registry = Arc::new(Registry::default());
        let accepting = Arc::clone(&registry);
        let thread = std::thread::Builder::new()
            .name("avp-accept".into())
            .spawn(move || accept_loop(&listener, &wake_read, &state, &accepting))?;
        Ok(Self {
            thread,
            wake,
            registry,
        })
    }

    /// Stops accepting, lets connections finish the request in flight (for `drain` at
    /// most), and returns.
    pub fn stop(self, drain: Duration) {
        drop(self.wake);
        let _ = self.thread.join();
        self.registry.stop_reading();
        let left = self.registry.wait_empty(drain);
        if left > 0 {
            tracing::warn!(left, "connections did not finish in time");
        }
    }
}

fn accept_loop(
    listener: &UnixListener,
    wake: &OwnedFd,
    state: &Arc<AgentState>,
    registry: &Arc<Registry>,
) {
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        if let Err(err) = poll(&mut fds, PollTimeout::NONE) {
            if err != nix::errno::Errno::EINTR {
                tracing::error!(%err, "poll failed; no longer accepting");
                return;
            }
            continue;
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return;
        }
        match listener.accept() {
            Ok((stream, _)) => admit(stream, state, registry),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%err, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn admit(stream: UnixStream, state: &Arc<AgentState>, registry: &Arc<Registry>) {
    let Some(peer) = peer_of(&stream) else {
        tracing::warn!("cannot read the peer's credentials; closing");
        return;
    };
    if peer.uid != state.uid {
        tracing::warn!(uid = peer.uid, pid = ?peer.pid, "refused a connection from another user");
        let message = format!("this agent serves uid {} only", state.uid);
        refuse(state, stream, &peer, ErrorCode::PermissionDenied, message);
        return;
    }
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Some(registration) = registry.admit(state.settings.max_connections, &stream) else {
        tracing::warn!("connection cap reached with no idle connection; refusing");
        let message = "the agent is at its connection limit: try again shortly".to_owned();
        refuse(state, stream, &peer, ErrorCode::RateLimitExceeded, message);
        return;
    };
    let conn = Connection::new(Arc::clone(state), peer, registration);
    let spawned = std::thread::Builder::new()
        .name("avp-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || connection::serve(stream, conn));
    if let Err(err) = spawned {
        tracing::error!(%err, "cannot start a connection thread; closing the connection");
    }
}
