//! One client connection, on its own thread: `Hello`, then read → dispatch → write until
//! the client leaves.
//!
//! Why a thread per connection and blocking reads: a RETRIEVE is a few microseconds of
//! work, so the cost of a round trip is the system calls and wake-ups around it. A blocked
//! `read` woken by the kernel is the least there is (it is what the benchmark's floor, a
//! bare echo server, does); an event loop adds a readiness wait, a `read` that finds
//! nothing, and often a hand-off between threads, per request. The connection cap (256 by
//! default) bounds the threads, each with a small stack.
//!
//! Every wait on the peer is bounded. Waiting for the next request may last
//! `connection_idle_timeout`; once the first byte of a frame has arrived, the whole frame
//! must arrive within `frame_timeout` (a slow-loris client cannot hold a slot), and an
//! answer must be taken within the same time. Eviction and shutdown reach a blocked read
//! by shutting the socket down (see `server`). A frame's buffer is allocated only after
//! its length passed the 1 MiB limit *and*, for a frame over [`UNBUDGETED_FRAME`], a share
//! of the agent-wide frame memory budget was granted, so a thousand clients announcing big
//! frames cannot make the agent allocate a gigabyte. Small frames — nearly every request,
//! `Hello` included — never wait for the budget: they are bounded by the connection cap,
//! and queueing them behind big frames would let a few clients announcing 1 MiB frames
//! stall every other client until the frame timeout cut them off.
//!
//! Requests are read straight from the socket into their zeroizing frame buffer, never
//! through a buffered reader: a reader's buffer lives as long as the connection and keeps
//! the bytes of the last request that filled it — a secret value or a passphrase, still in
//! memory after LOCK for as long as the client keeps the connection open (the reliability
//! suite's memory scan found exactly that).
//!
//! JSON lines. A connection whose first byte is `{` speaks the JSON-lines wire (PROTOCOL.md
//! §12) instead: `json` reads its lines and hands the same `Request`s to the same dispatcher,
//! under the same timeouts, cap and budget; the first byte is only peeked at, so the bincode
//! path reads exactly what it always did.
//!
//! Bad input closes this connection only: an oversized or undecodable frame is answered
//! with `PROTOCOL_ERROR` first; a frame with a rejected field (an invalid name…) is answered
//! with its code and the connection goes on.

mod json;

use crate::audit::Peer;
use crate::registry::{Registration, Registry};
use crate::state::{AgentState, BUDGET_UNIT};
use avp_protocol::frame::{self, FrameBuf, FrameError, HEADER_LEN};
use avp_protocol::{ErrorCode, ErrorResponse, PROTOCOL_VERSION, Request, Response};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Frames up to this size are read without a share of the frame budget: at most one per
/// connection exists at a time, so `max_connections` × 16 KiB (4 MiB at the default cap).
pub const UNBUDGETED_FRAME: usize = 16 << 10;

/// Everything a connection thread needs.
#[derive(Debug)]
pub struct Connection {
    /// The shared agent state.
    pub state: Arc<AgentState>,
    /// Who is calling.
    pub peer: Peer,
    /// Its place in the connection registry (for the cap, eviction and shutdown).
    pub registration: Registration,
    timeout: ReadTimeout,
}

impl Connection {
    /// A connection of `peer`, registered as `registration`.
    pub fn new(state: Arc<AgentState>, peer: Peer, registration: Registration) -> Self {
        Self {
            state,
            peer,
            registration,
            timeout: ReadTimeout::default(),
        }
    }
}

/// Why reading a request stopped.
enum Incoming {
    /// A whole frame's payload.
    Frame(FrameBuf),
    /// The client closed between frames, went idle too long, was evicted, or the agent is
    /// shutting down: close without a word.
    Done,
    /// The frame is bad: answer (if there is an answer) and close.
    Bad(FrameError),
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The socket's receive timeout, changed only when it must be: the common path of a request
/// (a blocking read of the header, the payload already waiting) then costs no `setsockopt`.
#[derive(Debug, Default)]
struct ReadTimeout(Cell<Option<Duration>>);

impl ReadTimeout {
    fn set(&self, stream: &UnixStream, timeout: Duration) -> io::Result<()> {
        if self.0.get() != Some(timeout) {
            stream.set_read_timeout(Some(timeout))?;
            self.0.set(Some(timeout));
        }
        Ok(())
    }
}

/// One read into `buf` before `deadline`: whatever has already arrived (without blocking),
/// else a blocking read bounded by the time left. The bytes read, never 0.
fn read_within(
    stream: &mut UnixStream,
    timeout: &ReadTimeout,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, FrameError> {
    loop {
        let fd = stream.as_raw_fd();
        let got = match recv(fd, buf, MsgFlags::MSG_DONTWAIT) {
            Err(Errno::EAGAIN) => {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
                    .ok_or(FrameError::Truncated)?;
                timeout.set(stream, left)?;
                stream.read(buf)
            }
            Err(errno) => Err(io::Error::from(errno)),
            Ok(n) => Ok(n),
        };
        match got {
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if is_timeout(&err) => return Err(FrameError::Truncated),
            Err(err) => return Err(err.into()),
        }
    }
}

/// Reads into `buf` until it is full or `deadline` passes.
fn read_until(
    stream: &mut UnixStream,
    timeout: &ReadTimeout,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        filled += read_within(stream, timeout, &mut buf[filled..], deadline)?;
    }
    Ok(())
}

impl Connection {
    /// Waits (at most the idle timeout) for the connection's first byte and peeks at it,
    /// leaving it to be read by the codec it chooses (PROTOCOL.md §12.1.1). `None` when the
    /// client left or stayed silent.
    fn first_byte(&self, stream: &UnixStream) -> Option<u8> {
        self.registration.set_idle();
        self.timeout
            .set(stream, self.state.settings.connection_idle_timeout)
            .ok()?;
        let mut byte = [0u8; 1];
        loop {
            match recv(stream.as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK) {
                Ok(1) => return Some(byte[0]),
                Err(Errno::EINTR) => {}
                Ok(_) | Err(_) => return None,
            }
        }
    }

    fn read_request(&self, stream: &mut UnixStream) -> Incoming {
        let settings = &self.state.settings;
        self.registration.set_idle();
        // Wait (at most the idle timeout) for the start of the next frame.
        let mut header = [0u8; HEADER_LEN];
        let got = self
            .timeout
            .set(stream, settings.connection_idle_timeout)
            .and_then(|()| read_some(stream, &mut header));
        let got = match got {
            Ok(0) | Err(_) => return Incoming::Done,
            Ok(n) => n,
        };
        // Mid-frame: first in line for eviction at the cap until the frame is whole.
        self.registration.set_reading();
        let deadline = Instant::now() + settings.frame_timeout;
        match self.read_rest(stream, header, got, deadline) {
            Ok(payload) => {
                self.registration.set_busy();
                Incoming::Frame(payload)
            }
            Err(FrameError::Truncated) => {
                tracing::debug!(pid = ?self.peer.pid, "frame cut off or not completed in time");
                Incoming::Done
            }
            Err(err) => Incoming::Bad(err),
        }
    }

    /// Reads the rest of a frame whose first `got` header bytes are in `header`, allocating
    /// its payload only after the length and the budget allow it.
    fn read_rest(
        &self,
        stream: &mut UnixStream,
        mut header: [u8; HEADER_LEN],
        got: usize,
        deadline: Instant,
    ) -> Result<FrameBuf, FrameError> {
        read_until(stream, &self.timeout, &mut header[got..], deadline)?;
        let len = frame::payload_len(header)?;
        // Held while the payload is read; the request decoded from it is far smaller.
        let _grant = if len <= UNBUDGETED_FRAME {
            None
        } else {
            let units = len.div_ceil(BUDGET_UNIT);
            let grant = self.state.frame_budget.take(units, deadline);
            Some(grant.ok_or(FrameError::Truncated)?)
        };
        let mut payload = Zeroizing::new(vec![0u8; len]);
        read_until(stream, &self.timeout, &mut payload, deadline)?;
        Ok(payload)
    }

    fn write(&self, stream: &mut UnixStream, response: &Response) -> bool {
        match encode_answer(response) {
            Some(bytes) => stream.write_all(&bytes).is_ok(),
            None => false,
        }
    }
}

/// The frame carrying `response`; if it cannot be encoded (larger than a frame: an agent
/// bug, since LIST pages are cut to fit), an error answer instead, so the client learns
/// what happened and the connection goes on rather than closing under it.
fn encode_answer(response: &Response) -> Option<FrameBuf> {
    match frame::encode(response) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            tracing::error!(kind = response.kind(), error = %err, "a response could not be encoded");
            frame::encode(&unencodable()).ok()
        }
    }
}

/// The answer sent in place of one that does not fit a frame.
fn unencodable() -> Response {
    error(
        ErrorCode::BackendError,
        "the agent's answer is larger than a frame and could not be sent: this is an \
         avp-agent bug, please report it (for LIST, ask for a smaller page)",
    )
}

/// One `read`, retried on EINTR: the bytes read (0 when the peer closed or the socket was
/// shut down).
fn read_some(stream: &mut UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error(ErrorResponse::new(code, message))
}

/// The answer to a frame that cannot be processed, if the peer should get one.
fn answer_to_bad_frame(err: &FrameError) -> Option<Response> {
    match err {
        FrameError::TooLarge(_) => Some(error(
            ErrorCode::ProtocolError,
            "frame exceeds the 1 MiB limit; closing the connection",
        )),
        FrameError::Malformed => Some(error(
            ErrorCode::ProtocolError,
            "malformed request; closing the connection",
        )),
        _ => None,
    }
}

pub use json::refusal;

/// Serves one connection to the end, on the calling thread.
pub fn serve(mut stream: UnixStream, conn: Connection) {
    serve_requests(&mut stream, &conn);
    // Leave the registry before the socket closes: the server shuts sockets down by
    // descriptor number, which must not name a reused descriptor.
    drop(conn);
    drop(stream);
}

fn serve_requests(stream: &mut UnixStream, conn: &Connection) {
    // An answer must be taken within the frame timeout, like a request must arrive in it.
    if stream
        .set_write_timeout(Some(conn.state.settings.frame_timeout))
        .is_err()
    {
        return;
    }
    match conn.first_byte(stream) {
        None => return,
        Some(json::FIRST_BYTE) => return json::serve(conn, stream),
        Some(_) => {}
    }
    if !hello(conn, stream) {
        return;
    }
    let mut bound = crate::cmd::ConnectionSession::default();
    loop {
        let payload = match conn.read_request(stream) {
            Incoming::Frame(payload) => payload,
            Incoming::Done => return,
            Incoming::Bad(err) => {
                tracing::debug!(error = %err, pid = ?conn.peer.pid, "bad frame; closing");
                if let Some(answer) = answer_to_bad_frame(&err) {
                    conn.write(stream, &answer);
                }
                return;
            }
        };
        let response = match frame::decode::<Request>(&payload) {
            Ok(request) => {
                drop(payload);
                crate::cmd::dispatch(&conn.state, &conn.peer, request, &mut bound)
            }
            Err(FrameError::Rejected(code, reason)) => error(code, reason),
            Err(err) => {
                tracing::debug!(error = %err, pid = ?conn.peer.pid, "undecodable request; closing");
                if let Some(answer) = answer_to_bad_frame(&err) {
                    conn.write(stream, &answer);
                }
                return;
            }
        };
        if !conn.write(stream, &response) {
            return;
        }
    }
}

/// Serves `stream` for `peer` outside the accept loop, on the calling thread: no connection
/// cap, but otherwise exactly the code path of an accepted connection (`Hello`, framing, the
/// frame budget, dispatch). This is how the fuzz target drives request handling
/// in-process, over one end of a `UnixStream::pair()`, without a listening socket.
pub fn serve_detached(state: Arc<AgentState>, stream: UnixStream, peer: Peer) {
    let registry = Arc::new(Registry::default());
    let Some(registration) = registry.admit(1, &stream) else {
        return;
    };
    serve(stream, Connection::new(state, peer, registration));
}

/// The first exchange: the client's `Hello` with a version we speak. Anything else is
/// answered and the connection closed.
fn hello(conn: &Connection, stream: &mut UnixStream) -> bool {
    let payload = match conn.read_request(stream) {
        Incoming::Frame(payload) => payload,
        Incoming::Done | Incoming::Bad(FrameError::Truncated | FrameError::Io(_)) => return false,
        Incoming::Bad(err) => {
            if let Some(answer) = answer_to_bad_frame(&err) {
                conn.write(stream, &answer);
            }
            return false;
        }
    };
    let response = match frame::decode::<Request>(&payload) {
        Ok(Request::Hello { version }) => match greeting(version) {
            (ok, true) => return conn.write(stream, &ok),
            (refused, false) => refused,
        },
        Ok(_) | Err(FrameError::Rejected(..)) => error(
            ErrorCode::ProtocolError,
            "the first request on a connection must be Hello",
        ),
        Err(_) => error(
            ErrorCode::ProtocolError,
            "malformed Hello; closing the connection",
        ),
    };
    conn.write(stream, &response);
    false
}

/// The answer to a client's `Hello{version}`, on either wire, and whether the connection
/// goes on: yes when we speak its version; else the answer is `VERSION_MISMATCH` and the
/// connection closes.
fn greeting(version: u32) -> (Response, bool) {
    if version == PROTOCOL_VERSION {
        let ok = Response::Hello {
            version: PROTOCOL_VERSION,
        };
        return (ok, true);
    }
    let mismatch = error(
        ErrorCode::VersionMismatch,
        format!(
            "client speaks protocol version {version}, this agent speaks {PROTOCOL_VERSION}: \
             use an avp client and agent from the same release"
        ),
    );
    (mismatch, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use avp_protocol::{Labels, ListPage, SecretMeta, SecretName, Timestamp};
    use std::collections::BTreeMap;

    #[test]
    fn an_answer_larger_than_a_frame_becomes_an_error_answer() {
        let labels: BTreeMap<String, String> = (0..64)
            .map(|l| (format!("{l:0128}"), "v".repeat(1024)))
            .collect();
        let meta = |i: usize| SecretMeta {
            name: SecretName::new(format!("S{i:02}")).unwrap(),
            version: 1,
            labels: Labels::new(labels.clone()).unwrap(),
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
            expires_at: None,
        };
        let too_big = Response::Listed(ListPage {
            secrets: (0..20).map(meta).collect(),
            next_cursor: None,
        });
        assert!(
            frame::encode(&too_big).is_err(),
            "the test needs an oversized answer"
        );
        let bytes = encode_answer(&too_big).expect("an answer is always sent");
        let answer: Response = frame::decode(&bytes[HEADER_LEN..]).unwrap();
        assert_eq!(answer, unencodable());
        let Response::Error(error) = answer else {
            unreachable!()
        };
        assert_eq!(error.code, ErrorCode::BackendError);
    }
}
