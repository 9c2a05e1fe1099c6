//! Accepting: peer-credential check on every connection, the connection cap, a thread per
//! connection, and a graceful drain at shutdown.
//!
//! Threads: whoever is woken serves. Every connection thread with nothing to serve waits
//! for the next client in its own `epoll` on the listening socket, registered with
//! `EPOLLEXCLUSIVE`, so the kernel wakes one of them per client; that thread accepts, admits
//! and serves the client itself, then goes back to waiting. A thread per connection as
//! before, but a new client costs no thread creation and no hand-off from an accepting
//! thread to a serving one: on a small VM each was a wake-up of another CPU, and together
//! they made a one-shot `avp get` wait ~0.1 ms for the agent. A thread that takes a client
//! when no other is waiting hands it to a new thread and goes on waiting, so someone always
//! accepts and a burst of clients is accepted as fast as before; threads beyond
//! [`SPARE_THREADS`] waiting end when their connection does.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long connections get to finish their current request at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Threads kept waiting for the next client when no client needs them: enough that a burst
/// of one-shot commands (a script calling `avp get` in a loop, a shell's completion) never
/// waits for a thread to start, few enough to cost nothing idle.
const SPARE_THREADS: usize = 4;

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

/// The running server.
#[derive(Debug)]
pub struct Server {
    /// Closing it wakes every waiting thread to end.
    wake: OwnedFd,
    acceptor: Arc<Acceptor>,
}

/// What the connection threads share.
#[derive(Debug)]
struct Acceptor {
    listener: UnixListener,
    /// The read end of the wake pipe.
    wake: OwnedFd,
    state: Arc<AgentState>,
    registry: Arc<Registry>,
    /// Threads waiting for a client.
    waiting: AtomicUsize,
    /// Connection threads alive.
    live: Arc<Live>,
    /// `epoll` instances of threads now serving a client, for the next thread to wait on:
    /// a thread holds one only while it waits, so a full table of connections does not
    /// cost a descriptor more each (and going back to wait costs no system call).
    spare_waiters: Mutex<Vec<Epoll>>,
}

/// The count of connection threads alive, so that stopping can wait for the last: each
/// holds the agent state, whose drop writes the audit log's last lines.
#[derive(Debug, Default)]
struct Live {
    threads: Mutex<usize>,
    ended: Condvar,
}

impl Live {
    fn begin(&self) {
        *guard(&self.threads) += 1;
    }

    fn end(&self) {
        let mut threads = guard(&self.threads);
        *threads -= 1;
        if *threads == 0 {
            self.ended.notify_all();
        }
    }

    /// Waits until no thread is alive, until `deadline` at most; how many are left.
    fn wait_none(&self, deadline: Instant) -> usize {
        let threads = guard(&self.threads);
        let within = deadline.saturating_duration_since(Instant::now());
        let (threads, _) = self
            .ended
            .wait_timeout_while(threads, within, |n| *n > 0)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *threads
    }
}

/// What a wait for a client came to.
enum Turn {
    /// A client, admitted: serve it.
    Serve(UnixStream, Connection),
    /// Nothing to serve (a refused client, another thread took it): wait again.
    Again,
    /// The server is stopping.
    Stop,
}

/// The `epoll` data of the wake pipe (the listener's is 0).
const WAKE: u64 = 1;

impl Server {
    /// Starts accepting on `listener`, on a thread of its own and the ones it adds.
    pub fn start(listener: UnixListener, state: Arc<AgentState>) -> std::io::Result<Self> {
        // Close-on-exec: a `-- CMD` child holding the write end would keep the server from
        // ever seeing it close (the agent could not stop) and could wake it at will.
        let (wake_read, wake) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let acceptor = Arc::new(Acceptor {
            listener,
            wake: wake_read,
            state,
            registry: Arc::new(Registry::default()),
            waiting: AtomicUsize::new(0),
            live: Arc::default(),
            spare_waiters: Mutex::default(),
        });
        spawn_thread(&acceptor, None)?;
        Ok(Self { wake, acceptor })
    }

    /// Stops accepting, lets connections finish the request in flight (for `drain` at
    /// most), and returns once every connection thread has ended (within the same bound).
    pub fn stop(self, drain: Duration) {
        let deadline = Instant::now() + drain;
        drop(self.wake);
        // From here no connection is admitted, so none escapes.
        let registry = &self.acceptor.registry;
        registry.stop_reading();
        let left = registry.wait_empty(drain);
        if left > 0 {
            tracing::warn!(left, "connections did not finish in time");
        }
        let live = Arc::clone(&self.acceptor.live);
        drop(self.acceptor);
        let threads = live.wait_none(deadline);
        if threads > 0 {
            tracing::warn!(threads, "connection threads did not end in time");
        }
    }
}

/// A client accepted and admitted, to serve.
type Client = (UnixStream, Connection);

/// Starts a connection thread, serving `first` (if any) before it waits for clients.
fn spawn_thread(acceptor: &Arc<Acceptor>, first: Option<Client>) -> std::io::Result<()> {
    let live = Arc::clone(&acceptor.live);
    let acceptor = Arc::clone(acceptor);
    live.begin();
    let ending = Arc::clone(&live);
    let spawned = std::thread::Builder::new()
        .name("avp-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            serve_clients(&acceptor, first);
            // The state goes before the count says so: the last thread's end lets `stop`
            // return and the state drop.
            drop(acceptor);
            ending.end();
        });
    spawned.map(drop).inspect_err(|_| live.end())
}

/// A connection thread's life: serve, wait for a client, and again, until the server stops
/// or enough other threads are waiting.
fn serve_clients(acceptor: &Arc<Acceptor>, first: Option<Client>) {
    if let Some((stream, conn)) = first {
        connection::serve(stream, conn);
        if acceptor.waiting.load(Ordering::SeqCst) >= SPARE_THREADS {
            return;
        }
    }
    let mut kept = None;
    loop {
        let waiter = match kept.take().map_or_else(|| acceptor.waiter(), Ok) {
            Ok(waiter) => waiter,
            Err(err) => {
                // The thread that started this one goes on accepting.
                tracing::error!(%err, "cannot wait for clients on a new thread");
                return;
            }
        };
        acceptor.waiting.fetch_add(1, Ordering::SeqCst);
        let turn = acceptor.next_client(&waiter);
        let others = acceptor.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        let (stream, conn) = match turn {
            Turn::Serve(stream, conn) => (stream, conn),
            Turn::Again => {
                kept = Some(waiter);
                continue;
            }
            Turn::Stop => return,
        };
        if others == 0 {
            // Nobody else waits for the next client: a new thread serves this one and this
            // thread goes on accepting, so a burst of clients never waits for a thread to
            // start per client before it is even accepted.
            if let Err(err) = spawn_thread(acceptor, Some((stream, conn))) {
                tracing::error!(%err, "cannot start a connection thread; closing the connection");
            }
            kept = Some(waiter);
            continue;
        }
        acceptor.put_back(waiter);
        connection::serve(stream, conn);
        if acceptor.waiting.load(Ordering::SeqCst) >= SPARE_THREADS {
            return;
        }
    }
}

impl Acceptor {
    /// An `epoll` for a thread to wait on alone: the listener, shared exclusively with the
    /// other threads' (the kernel wakes one waiter per client; an instance no thread waits
    /// on is passed over), and the wake pipe (which wakes them all). A spare one if there
    /// is one, else a new one.
    fn waiter(&self) -> nix::Result<Epoll> {
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
    fn put_back(&self, waiter: Epoll) {
        let mut spare = guard(&self.spare_waiters);
        if spare.len() <= SPARE_THREADS {
            spare.push(waiter);
        }
    }

    /// Waits for a client (or the stop), accepts and admits it.
    fn next_client(&self, waiter: &Epoll) -> Turn {
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
