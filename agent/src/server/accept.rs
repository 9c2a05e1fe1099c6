//! Taking one client: waiting for it in a thread's own `epoll`, accepting it, checking its
//! peer credentials and admitting it under the connection cap (or refusing it with an
//! answer); see `server` for the rules.

use super::threads::{Live, SPARE_THREADS};
use crate::audit::Peer;
use crate::connection::{self, Connection};
use crate::registry::Registry;
use crate::state::AgentState;
use crate::sync::guard;
use avp_protocol::{ErrorCode, ErrorResponse, Response, frame};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the connection threads share.
#[derive(Debug)]
pub(super) struct Acceptor {
    listener: UnixListener,
    /// The read end of the wake pipe.
    wake: OwnedFd,
    state: Arc<AgentState>,
    registry: Arc<Registry>,
    /// Threads waiting for a client.
    pub(super) waiting: AtomicUsize,
    /// Connection threads alive.
    live: Arc<Live>,
    /// `epoll` instances of threads now serving a client, for the next thread to wait on:
    /// a thread holds one only while it waits, so a full table of connections does not
    /// cost a descriptor more each (and going back to wait costs no system call).
    spare_waiters: Mutex<Vec<Epoll>>,
}

/// What a wait for a client came to.
pub(super) enum Turn {
    /// A client, admitted: serve it.
    Serve(UnixStream, Connection),
    /// Nothing to serve (a refused client, another thread took it): wait again.
    Again,
    /// The server is stopping.
    Stop,
}

/// The `epoll` data of the wake pipe (the listener's is 0).
const WAKE: u64 = 1;

impl Acceptor {
    pub(super) fn new(listener: UnixListener, wake: OwnedFd, state: Arc<AgentState>) -> Self {
        Self {
            listener,
            wake,
            state,
            registry: Arc::new(Registry::default()),
            waiting: AtomicUsize::new(0),
            live: Arc::default(),
            spare_waiters: Mutex::default(),
        }
    }

    /// The live connections.
    pub(super) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The connection threads alive.
    pub(super) fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// An `epoll` for a thread to wait on alone: the listener, shared exclusively with the
    /// other threads' (the kernel wakes one waiter per client; an instance no thread waits
    /// on is passed over), and the wake pipe (which wakes them all). A spare one if there
    /// is one, else a new one.
    pub(super) fn waiter(&self) -> nix::Result<Epoll> {
        if let Some(epoll) = guard(&self.spare_waiters).pop() {
            return Ok(epoll);
        }
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let listen = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
        epoll.add(&self.listener, EpollEvent::new(listen, 0))?;
        epoll.add(&self.wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        Ok(epoll)
    }

    /// Keeps a waiter its thread no longer waits on for the next (a few; the rest close).
    pub(super) fn put_back(&self, waiter: Epoll) {
        let mut spare = guard(&self.spare_waiters);
        if spare.len() <= SPARE_THREADS {
            spare.push(waiter);
        }
    }

    /// Waits for a client (or the stop), accepts and admits it.
    pub(super) fn next_client(&self, waiter: &Epoll) -> Turn {
        let mut events = [EpollEvent::empty(); 2];
        let ready = match waiter.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => &events[..n],
            Err(nix::errno::Errno::EINTR) => return Turn::Again,
            Err(err) => {
                tracing::error!(%err, "epoll_wait failed; this thread no longer accepts");
                return Turn::Stop;
            }
        };
        if ready.iter().any(|event| event.data() == WAKE) {
            return Turn::Stop;
        }
        match self.listener.accept() {
            Ok((stream, _)) => self.admit(stream),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Turn::Again,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%err, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
                Turn::Again
            }
        }
    }

    fn admit(&self, stream: UnixStream) -> Turn {
        let state = &self.state;
        let Some(peer) = peer_of(&stream) else {
            tracing::warn!("cannot read the peer's credentials; closing");
            return Turn::Again;
        };
        if peer.uid != state.uid {
            tracing::warn!(uid = peer.uid, pid = ?peer.pid, "refused a connection from another user");
            let message = format!("this agent serves uid {} only", state.uid);
            refuse(state, stream, &peer, ErrorCode::PermissionDenied, message);
            return Turn::Again;
        }
        if stream.set_nonblocking(false).is_err() {
            return Turn::Again;
        }
        let cap = state.settings.max_connections;
        let Some(registration) = self.registry.admit(cap, &stream) else {
            if self.registry.stopping() {
                return Turn::Stop;
            }
            tracing::warn!("connection cap reached with no idle connection; refusing");
            let message = "the agent is at its connection limit: try again shortly".to_owned();
            refuse(state, stream, &peer, ErrorCode::RateLimitExceeded, message);
            return Turn::Again;
        };
        Turn::Serve(
            stream,
            Connection::new(Arc::clone(state), peer, registration),
        )
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
/// does not read cannot stall the thread that accepted it for long.
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
