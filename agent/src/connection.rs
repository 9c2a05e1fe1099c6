//! One client connection: `Hello`, then read → dispatch → write until the client leaves.
//!
//! Every wait on the peer races shutdown, eviction and a timeout: a connection waiting for
//! its next request may idle for `connection_idle_timeout`; once the first byte of a frame
//! has arrived, the whole frame must arrive within `frame_timeout` (a slow-loris client
//! cannot hold a slot), and an answer must be taken within the same time. A frame's buffer is
//! only allocated after its length passed the 1 MiB limit *and*, for a frame over
//! [`UNBUDGETED_FRAME`], a share of the agent-wide frame memory budget was granted, so a
//! thousand clients announcing big frames cannot make the agent allocate a gigabyte. Small
//! frames — nearly every request, `Hello` included — never wait for the budget: they are
//! bounded by the connection cap instead, and queueing them behind big frames would let a
//! few clients announcing 1 MiB frames stall every other client until the frame timeout cut
//! them off (the reliability suite found exactly that).
//!
//! Requests are read straight from the socket into their zeroizing frame buffer, never
//! through a buffered reader: a reader's buffer lives as long as the connection and keeps
//! the bytes of the last request that filled it — a secret value or a passphrase, still in
//! memory after LOCK for as long as the client keeps the connection open (the reliability
//! suite's memory scan found exactly that). Two reads per frame cost nothing next to that.
//!
//! Bad input closes this connection only: an oversized or undecodable frame is answered
//! with `PROTOCOL_ERROR` first; a frame with a rejected field (an invalid name…) is answered
//! with its code and the connection goes on.

use crate::audit::Peer;
use crate::server::Registration;
use crate::state::AgentState;
use avp_protocol::frame::{self, FrameBuf, FrameError, HEADER_LEN};
use avp_protocol::{ErrorCode, ErrorResponse, PROTOCOL_VERSION, Request, Response};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// Bytes of frame memory one budget permit stands for.
pub const BUDGET_UNIT: usize = 4096;

/// Frames up to this size are read without a share of the frame budget: at most one per
/// connection exists at a time, so `max_connections` × 16 KiB (4 MiB at the default cap).
pub const UNBUDGETED_FRAME: usize = 16 << 10;

/// Everything a connection task needs.
#[derive(Debug)]
pub struct Connection {
    /// The shared agent state.
    pub state: Arc<AgentState>,
    /// Who is calling.
    pub peer: Peer,
    /// Its place in the connection registry (for the cap and eviction).
    pub registration: Registration,
    /// Turns true when the agent shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Why reading a request stopped.
enum Read {
    /// A whole frame's payload.
    Frame(FrameBuf),
    /// The client closed between frames, went idle too long, was evicted, or the agent is
    /// shutting down: close without a word.
    Done,
    /// The frame is bad: answer (if there is an answer) and close.
    Bad(FrameError),
}

impl Connection {
    async fn read_request(&mut self, stream: &mut UnixStream) -> Read {
        let settings = &self.state.settings;
        self.registration.set_idle();
        // Wait for the first byte of the next frame.
        let first = tokio::select! {
            first = tokio::time::timeout(settings.connection_idle_timeout, first_byte(stream)) => first,
            _ = self.registration.evict.notified() => return Read::Done,
            _ = self.shutdown.changed() => return Read::Done,
        };
        let first = match first {
            Ok(Ok(Some(byte))) => byte,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return Read::Done,
        };
        self.registration.set_busy();
        let whole = tokio::select! {
            read = tokio::time::timeout(settings.frame_timeout, read_frame(&self.state, stream, first)) => read,
            _ = self.shutdown.changed() => return Read::Done,
        };
        match whole {
            Ok(Ok(payload)) => Read::Frame(payload),
            Ok(Err(err)) => Read::Bad(err),
            Err(_) => {
                tracing::debug!(pid = ?self.peer.pid, "frame not completed in time; closing");
                Read::Done
            }
        }
    }

    async fn write(&self, stream: &mut UnixStream, response: &Response) -> bool {
        let Ok(bytes) = frame::encode(response) else {
            tracing::error!(kind = response.kind(), "a response could not be encoded");
            return false;
        };
        let timeout = self.state.settings.frame_timeout;
        matches!(
            tokio::time::timeout(timeout, stream.write_all(&bytes)).await,
            Ok(Ok(()))
        )
    }
}

/// Waits for the first byte of the next frame; `None` when the peer closed cleanly.
async fn first_byte(stream: &UnixStream) -> std::io::Result<Option<u8>> {
    let mut byte = [0u8; 1];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(byte[0])),
            // Readiness can be spurious.
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// Reads the rest of a frame whose first byte is `first`, allocating its payload only after
/// the length and the budget allow it.
async fn read_frame(
    state: &AgentState,
    stream: &mut UnixStream,
    first: u8,
) -> Result<FrameBuf, FrameError> {
    let mut header = [first; HEADER_LEN];
    read_exact(stream, &mut header[1..]).await?;
    let len = frame::payload_len(header)?;
    // Held while the payload is read; the request decoded from it is far smaller.
    let _budget = if len <= UNBUDGETED_FRAME {
        None
    } else {
        let units = u32::try_from(len.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        let permit = state.frame_budget.acquire_many(units).await;
        Some(permit.map_err(|_| FrameError::Truncated)?)
    };
    let mut payload = Zeroizing::new(vec![0u8; len]);
    read_exact(stream, &mut payload).await?;
    Ok(payload)
}

async fn read_exact(stream: &mut UnixStream, buf: &mut [u8]) -> Result<(), FrameError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(err) => Err(FrameError::Io(err)),
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

/// Serves one connection to the end.
pub async fn serve(mut stream: UnixStream, mut conn: Connection) {
    if !hello(&mut conn, &mut stream).await {
        return;
    }
    loop {
        let payload = match conn.read_request(&mut stream).await {
            Read::Frame(payload) => payload,
            Read::Done => return,
            Read::Bad(err) => {
                tracing::debug!(error = %err, pid = ?conn.peer.pid, "bad frame; closing");
                if let Some(answer) = answer_to_bad_frame(&err) {
                    conn.write(&mut stream, &answer).await;
                }
                return;
            }
        };
        let response = match frame::decode::<Request>(&payload) {
            Ok(request) => {
                drop(payload);
                crate::cmd::dispatch(&conn.state, &conn.peer, request).await
            }
            Err(FrameError::Rejected(code, reason)) => error(code, reason),
            Err(err) => {
                tracing::debug!(error = %err, pid = ?conn.peer.pid, "undecodable request; closing");
                if let Some(answer) = answer_to_bad_frame(&err) {
                    conn.write(&mut stream, &answer).await;
                }
                return;
            }
        };
        if !conn.write(&mut stream, &response).await {
            return;
        }
    }
}

/// Serves `stream` for `peer` outside the accept loop: no connection cap and no shutdown
/// signal, but otherwise exactly the code path of an accepted connection (`Hello`, framing,
/// the frame budget, dispatch). This is how the fuzz target drives request handling
/// in-process, over one end of a `UnixStream::pair()`, without a listening socket.
pub async fn serve_detached(state: Arc<AgentState>, stream: UnixStream, peer: Peer) {
    let registry = Arc::new(crate::server::Registry::default());
    let Some(registration) = registry.admit(1) else {
        return;
    };
    // The sender lives as long as the connection, so `shutdown` never fires.
    let (_never, shutdown) = watch::channel(false);
    let conn = Connection {
        state,
        peer,
        registration,
        shutdown,
    };
    serve(stream, conn).await;
}

/// The first exchange: the client's `Hello` with a version we speak. Anything else is
/// answered and the connection closed.
async fn hello(conn: &mut Connection, stream: &mut UnixStream) -> bool {
    let payload = match conn.read_request(stream).await {
        Read::Frame(payload) => payload,
        Read::Done | Read::Bad(FrameError::Truncated | FrameError::Io(_)) => return false,
        Read::Bad(err) => {
            if let Some(answer) = answer_to_bad_frame(&err) {
                conn.write(stream, &answer).await;
            }
            return false;
        }
    };
    let response = match frame::decode::<Request>(&payload) {
        Ok(Request::Hello { version }) if version == PROTOCOL_VERSION => {
            let ok = Response::Hello {
                version: PROTOCOL_VERSION,
            };
            return conn.write(stream, &ok).await;
        }
        Ok(Request::Hello { version }) => error(
            ErrorCode::VersionMismatch,
            format!(
                "client speaks protocol version {version}, this agent speaks {PROTOCOL_VERSION}: \
                 use an avp client and agent from the same release"
            ),
        ),
        Ok(_) | Err(FrameError::Rejected(..)) => error(
            ErrorCode::ProtocolError,
            "the first request on a connection must be Hello",
        ),
        Err(_) => error(
            ErrorCode::ProtocolError,
            "malformed Hello; closing the connection",
        ),
    };
    conn.write(stream, &response).await;
    false
}
