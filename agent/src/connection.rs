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
//! Every wait on the peer is bounded, and every byte a client sends is wiped once its
//! request is decoded: `reader` holds the receive buffer (the idle and frame timeouts, the
//! 1 MiB limit and the agent-wide frame budget, see there), `outbox` the answers, written
//! together when requests came together. Eviction and shutdown reach a blocked read by
//! shutting the socket down (see `server`).
//!
//! JSON lines. A connection whose first byte is `{` speaks the JSON-lines wire (PROTOCOL.md
//! §12) instead: `json` decodes its lines into the same `Request`s, handed to the same
//! dispatcher through the same loop, under the same timeouts, cap and budget; only the codec
//! and the Hello rule differ.
//!
//! Bad input closes this connection only: an oversized or undecodable frame is answered
//! with `PROTOCOL_ERROR` first; a frame with a rejected field (an invalid name…) is answered
//! with its code and the connection goes on.

mod json;
mod outbox;
mod reader;

use crate::audit::Peer;
use crate::cmd::ConnectionSession;
use crate::registry::{Registration, Registry};
use crate::state::AgentState;
use avp_protocol::frame::{self, FrameBuf, FrameError};
use avp_protocol::{ErrorCode, ErrorResponse, PROTOCOL_VERSION, Request, Response};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use outbox::Outbox;
use reader::{Message, Reader, Wire};
use std::cell::Cell;
use std::io::{self, Read};
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
        None => {}
        Some(json::FIRST_BYTE) => serve_messages(conn, stream, &json::CODEC),
        Some(_) => serve_messages(conn, stream, &FRAMES),
    }
}

/// The answer to one message, and whether the connection closes after it.
struct Reply {
    response: Response,
    close: bool,
}

impl Reply {
    fn go_on(response: Response) -> Self {
        Self {
            response,
            close: false,
        }
    }

    fn close(response: Response) -> Self {
        Self {
            response,
            close: true,
        }
    }
}

/// What a message comes to.
enum Turn {
    /// A request to dispatch.
    Request(Request),
    /// An answer of the wire's own (`Hello`, a bad message), and whether to close after it.
    Reply(Reply),
    /// Close without a word.
    Close,
}

/// What a wire needs besides its framing: how a message becomes a request, how an answer
/// becomes bytes.
struct Codec {
    wire: Wire,
    /// What a message comes to; `first` says whether it is the connection's first.
    turn: fn(&Connection, &[u8], bool) -> Turn,
    encode: fn(&Response) -> Option<Zeroizing<Vec<u8>>>,
    /// The answer to a message over the 1 MiB limit, before the connection closes.
    too_large: fn() -> Zeroizing<Vec<u8>>,
}

/// Length-prefixed bincode frames (PROTOCOL.md §2), `Hello` first.
const FRAMES: Codec = Codec {
    wire: Wire::Frames,
    turn: frame_turn,
    encode: encode_answer,
    too_large: || {
        let answer = answer_to_bad_frame(&FrameError::TooLarge(0));
        answer
            .and_then(|a| frame::encode(&a).ok())
            .unwrap_or_default()
    },
};

/// Reads, dispatches and answers until the client leaves or a message closes the
/// connection; answers to requests that arrived together are written together.
fn serve_messages(conn: &Connection, stream: &mut UnixStream, codec: &Codec) {
    // The session the latest AUTHENTICATE on this connection opened (§6.17, §6.18).
    let mut bound = ConnectionSession::default();
    let mut reader = Reader::new(conn, codec.wire);
    let mut outbox = Outbox::default();
    let mut first = true;
    loop {
        let range = match reader.next(stream, &mut outbox) {
            Message::Ready(range) => range,
            Message::Done => return,
            Message::TooLarge => {
                tracing::debug!(pid = ?conn.peer.pid, "message over the limit; closing");
                outbox.push(stream, (codec.too_large)());
                outbox.flush(stream);
                return;
            }
        };
        conn.registration.set_busy();
        let turn = (codec.turn)(conn, reader.message(range), first);
        reader.consume();
        first = false;
        let reply = match turn {
            Turn::Request(request) => {
                // The answers waiting go first when this one may take seconds: a client
                // that pipelined a STATUS before an AUTHENTICATE waiting for the pinentry
                // gets the STATUS now.
                if may_take_seconds(&request) && !outbox.flush(stream) {
                    return;
                }
                let response = crate::cmd::dispatch(&conn.state, &conn.peer, request, &mut bound);
                Reply {
                    response,
                    close: false,
                }
            }
            Turn::Reply(reply) => reply,
            Turn::Close => {
                outbox.flush(stream);
                return;
            }
        };
        let answer = (codec.encode)(&reply.response);
        drop(reply.response);
        let sent = answer.is_some_and(|bytes| outbox.push(stream, bytes));
        if !sent || reply.close {
            outbox.flush(stream);
            return;
        }
    }
}

/// Requests that may keep the connection busy for seconds: a wait for the pinentry, and
/// the passphrase operations (scrypt, and the wrong-passphrase delay).
fn may_take_seconds(request: &Request) -> bool {
    matches!(
        request,
        Request::Authenticate {
            wait_for_unlock: true,
            ..
        } | Request::Init { .. }
            | Request::Unlock { .. }
            | Request::ChangePassphrase { .. }
    )
}

/// One bincode frame: `Hello` must come first (and speak our version); then each request
/// is dispatched. A rejected field is answered and the connection goes on; an undecodable
/// frame is answered and closes it.
fn frame_turn(conn: &Connection, payload: &[u8], first: bool) -> Turn {
    let decoded = frame::decode::<Request>(payload);
    if first {
        let refused = match decoded {
            Ok(Request::Hello { version }) => return Turn::Reply(greeting(version)),
            Ok(_) | Err(FrameError::Rejected(..)) => {
                "the first request on a connection must be Hello"
            }
            Err(_) => "malformed Hello; closing the connection",
        };
        return Turn::Reply(Reply::close(error(ErrorCode::ProtocolError, refused)));
    }
    match decoded {
        Ok(request) => Turn::Request(request),
        Err(FrameError::Rejected(code, reason)) => Turn::Reply(Reply::go_on(error(code, reason))),
        Err(err) => {
            tracing::debug!(error = %err, pid = ?conn.peer.pid, "undecodable request; closing");
            answer_to_bad_frame(&err)
                .map_or(Turn::Close, |answer| Turn::Reply(Reply::close(answer)))
        }
    }
}

/// Serves `stream` for `peer` outside the server, on the calling thread: no connection
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

/// The answer to a client's `Hello{version}`, on either wire: the connection goes on when we
/// speak its version; else the answer is `VERSION_MISMATCH` and the connection closes.
fn greeting(version: u32) -> Reply {
    if version == PROTOCOL_VERSION {
        return Reply::go_on(Response::Hello {
            version: PROTOCOL_VERSION,
        });
    }
    Reply::close(error(
        ErrorCode::VersionMismatch,
        format!(
            "client speaks protocol version {version}, this agent speaks {PROTOCOL_VERSION}: \
             use an avp client and agent from the same release"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use avp_protocol::frame::HEADER_LEN;
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
