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
//! answered, the next read ends the thread). The descriptor is only used under the
//! registry's lock, and a connection leaves the registry before it closes its socket
//! (`connection::serve`), so the number can never name another file by then.

use crate::audit::Peer;
use crate::connection::{self, Connection};
use crate::state::AgentState;
use crate::sync::guard;
use avp_protocol::{ErrorCode, ErrorResponse, Response, frame};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{Shutdown, shutdown};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long connections get to finish their current request at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Stack of a connection thread: decoding and dispatch need little, and 256 of them must
/// stay cheap.
const CONNECTION_STACK: usize = 256 << 10;

/// What a connection is doing, for the choice of whom to evict at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request, since then.
    Idle(Instant),
    /// Part of a frame has arrived, the first byte at this instant; the rest is awaited.
    Reading(Instant),
    /// A whole request is being dispatched or answered: never evicted.
    Busy,
}

impl Phase {
    /// The eviction order: lower goes first. Partial frames (oldest first) before idle
    /// connections (longest idle first); busy ones never.
    fn eviction_rank(self) -> Option<(u8, Instant)> {
        match self {
            Phase::Reading(since) => Some((0, since)),
            Phase::Idle(since) => Some((1, since)),
            Phase::Busy => None,
        }
    }
}

#[derive(Debug)]
struct Tracked {
    phase: Phase,
    /// Its socket's descriptor, to shut it down from here (see the module docs).
    socket: RawFd,
}

/// The live connections, for the cap, eviction and shutdown.
#[derive(Debug, Default)]
pub struct Registry {
    connections: Mutex<HashMap<u64, Tracked>>,
    next_id: Mutex<u64>,
    /// Signalled when the last connection leaves (the shutdown drain waits on it).
    emptied: Condvar,
}

/// A connection's entry in the [`Registry`]; removed on drop.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Registration {
    fn set(&self, phase: Phase) {
        if let Some(t) = guard(&self.registry.connections).get_mut(&self.id) {
            t.phase = phase;
        }
    }

    /// The connection is waiting for its next request (and may be evicted).
    pub fn set_idle(&self) {
        self.set(Phase::Idle(Instant::now()));
    }

    /// The first bytes of a frame arrived; the rest is awaited (evicted first at the cap).
    pub fn set_reading(&self) {
        self.set(Phase::Reading(Instant::now()));
    }

    /// The connection is dispatching or answering a whole request.
    pub fn set_busy(&self) {
        self.set(Phase::Busy);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut connections = guard(&self.registry.connections);
        connections.remove(&self.id);
        if connections.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

impl Registry {
    /// Live connections.
    pub fn len(&self) -> usize {
        guard(&self.connections).len()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers the connection on `socket` if there is room, evicting at `cap` the oldest
    /// partial frame, else the longest-idle connection (see the module docs). `None`: at
    /// the cap with every connection busy.
    pub fn admit(self: &Arc<Self>, cap: usize, socket: &UnixStream) -> Option<Registration> {
        let socket = socket.as_raw_fd();
        let mut connections = guard(&self.connections);
        if connections.len() >= cap {
            let (_, victim) = connections
                .iter()
                .filter_map(|(id, t)| t.phase.eviction_rank().map(|rank| (rank, *id)))
                .min()?;
            if let Some(victim) = connections.remove(&victim) {
                let _ = shutdown(victim.socket, Shutdown::Both);
            }
        }
        let id = {
            let mut next = guard(&self.next_id);
            *next += 1;
            *next
        };
        // Waiting for its Hello: idle from the start, so a newcomer that never speaks can be
        // evicted before its thread has even run.
        connections.insert(
            id,
            Tracked {
                phase: Phase::Idle(Instant::now()),
                socket,
            },
        );
        Some(Registration {
            registry: Arc::clone(self),
            id,
        })
    }

    /// Stops every connection from reading another request.
    fn stop_reading(&self) {
        for tracked in guard(&self.connections).values() {
            let _ = shutdown(tracked.socket, Shutdown::Read);
        }
    }

    /// Waits until no connection is live, for `within` at most; returns how many are left.
    fn wait_empty(&self, within: Duration) -> usize {
        let connections = guard(&self.connections);
        let (connections, _) = self
            .emptied
            .wait_timeout_while(connections, within, |c| !c.is_empty())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connections.len()
    }
}

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
    if let Ok(bytes) = frame::encode(&response) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn is_shut(socket: &mut UnixStream) -> bool {
        use std::io::Read;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        matches!(socket.read(&mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let registry = Arc::new(Registry::default());
        let (mut sa, _pa) = UnixStream::pair().unwrap();
        let (sb, _pb) = UnixStream::pair().unwrap();
        let (sc, _pc) = UnixStream::pair().unwrap();
        let a = registry.admit(2, &sa).unwrap();
        let b = registry.admit(2, &sb).unwrap();
        a.set_idle();
        std::thread::sleep(Duration::from_millis(5));
        b.set_idle();
        let c = registry.admit(2, &sc).expect("room made");
        assert_eq!(registry.len(), 2);
        assert!(
            is_shut(&mut sa),
            "a was idle longest: its socket was shut down"
        );
        b.set_busy();
        c.set_busy();
        assert!(registry.admit(2, &sc).is_none(), "nobody idle: refuse");
        drop(c);
        assert!(registry.admit(2, &sc).is_some());
    }

    #[test]
    fn at_the_cap_the_oldest_partial_frame_goes_before_any_idle_connection() {
        let registry = Arc::new(Registry::default());
        let (sa, _pa) = UnixStream::pair().unwrap();
        let (mut sb, _pb) = UnixStream::pair().unwrap();
        let (mut sc, _pc) = UnixStream::pair().unwrap();
        let (sd, _pd) = UnixStream::pair().unwrap();
        let a = registry.admit(3, &sa).unwrap();
        let b = registry.admit(3, &sb).unwrap();
        let c = registry.admit(3, &sc).unwrap();
        // a idle longest, then b and c mid-frame, b's frame the older.
        a.set_idle();
        b.set_reading();
        std::thread::sleep(Duration::from_millis(5));
        c.set_reading();
        let _d = registry.admit(3, &sd).expect("room made");
        assert!(is_shut(&mut sb), "b's partial frame was the oldest");
        let _e = registry.admit(3, &sd).expect("room made");
        assert!(
            is_shut(&mut sc),
            "then c's partial frame, before the idle a"
        );
        assert_eq!(registry.len(), 3);
        drop(a);
    }
}
