//! A JSON-lines connection (PROTOCOL.md §12): the connection's first byte was `{`.
//!
//! Only the codec differs from a bincode connection: each line is translated by
//! `avp_protocol::json` into the same `Request` and handed to the same `cmd::dispatch`
//! (validation, sessions, audit), and the same `Response` is written back as a line. The
//! waits are the bincode path's: the idle timeout between lines, the frame timeout once a
//! line has begun, the write timeout on answers; the connection's registration moves through
//! idle → reading → busy as a frame's does, so the cap evicts a slow JSON sender first too.
//!
//! Memory. A line is read into one zeroizing buffer that starts at 4 KiB and grows (doubling)
//! only as far as the line needs, never past 1 MiB: a longer line is refused as soon as the
//! limit is passed, before anything more is read. Growth past 16 KiB draws on the agent-wide
//! frame budget exactly as a big bincode frame does. A line is wiped from the buffer as soon
//! as it is decoded (before dispatch); bytes a client sent ahead (several lines written at
//! once, as `printf 'a\nb\n' | socat` does) stay in the buffer until their turn, and the
//! buffer shrinks back to 4 KiB — wiped — once it is empty.

use super::{Connection, UNBUDGETED_FRAME, error, greeting, read_some, read_within};
use crate::cmd;
use crate::state::BUDGET_UNIT;
use crate::sync::Grant;
use avp_protocol::json::{self as wire, MAX_LINE_LEN};
use avp_protocol::{ErrorCode, Request, Response};
use nix::sys::socket::{MsgFlags, recv};
use std::io::Write;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;
use zeroize::{Zeroize, Zeroizing};

pub use avp_protocol::json::FIRST_BYTE;

/// The line buffer's size between lines: every ordinary request fits.
const INITIAL_BUFFER: usize = 4 << 10;

const TOO_LONG: &str = "the line exceeds the 1 MiB limit; closing the connection";

/// Why reading a line stopped.
enum Line {
    /// A whole line (without its `\n`) at this range of the buffer.
    Ready(Range<usize>),
    /// The client left, went idle too long, cut a line off, was evicted, or the agent is
    /// shutting down: close without a word.
    Done,
    /// More than 1 MiB without a `\n`.
    TooLong,
}

/// The connection's line buffer: `buf[start..end]` holds bytes received and not yet
/// consumed; `buf[start..scanned]` is known to hold no `\n`.
struct LineReader<'c> {
    conn: &'c Connection,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    scanned: usize,
    /// The frame-budget units held for the buffer's size beyond [`UNBUDGETED_FRAME`].
    grants: Vec<Grant<'c>>,
}

impl<'c> LineReader<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            buf: Zeroizing::new(vec![0; INITIAL_BUFFER]),
            start: 0,
            end: 0,
            scanned: 0,
            grants: Vec::new(),
        }
    }

    fn next(&mut self, stream: &mut UnixStream) -> Line {
        let settings = &self.conn.state.settings;
        let mut deadline = None;
        loop {
            if let Some(at) = self.buf[self.scanned..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let newline = self.scanned + at;
                self.scanned = newline + 1;
                return Line::Ready(self.start..newline);
            }
            self.scanned = self.end;
            if self.end - self.start >= MAX_LINE_LEN {
                return Line::TooLong;
            }
            let pending = self.end > self.start;
            let deadline = match (pending, deadline) {
                (false, _) => None,
                (true, Some(at)) => Some(at),
                (true, None) => {
                    // Mid-line: first in line for eviction at the cap until it is whole.
                    self.conn.registration.set_reading();
                    let at = Instant::now() + settings.frame_timeout;
                    deadline = Some(at);
                    Some(at)
                }
            };
            if self.end == self.buf.len() && !self.make_room(deadline) {
                return Line::Done;
            }
            let room = &mut self.buf[self.end..];
            let got = match deadline {
                None => {
                    self.conn.registration.set_idle();
                    match self
                        .conn
                        .timeout
                        .set(stream, settings.connection_idle_timeout)
                        .and_then(|()| read_some(stream, room))
                    {
                        Ok(n) if n > 0 => n,
                        _ => return Line::Done,
                    }
                }
                Some(at) => match read_within(stream, &self.conn.timeout, room, at) {
                    Ok(n) => n,
                    Err(err) => {
                        tracing::debug!(error = %err, pid = ?self.conn.peer.pid, "line cut off or not completed in time");
                        return Line::Done;
                    }
                },
            };
            self.end += got;
        }
    }

    /// Frees space at the end of a full buffer: moves a partial line to the front, or grows
    /// the buffer (at most to [`MAX_LINE_LEN`], the growth past [`UNBUDGETED_FRAME`] granted
    /// by the frame budget before `deadline`). False when the budget never had room.
    fn make_room(&mut self, deadline: Option<Instant>) -> bool {
        if self.start > 0 {
            let len = self.end - self.start;
            self.buf.copy_within(self.start..self.end, 0);
            self.buf[len..self.end].zeroize();
            self.scanned -= self.start;
            self.start = 0;
            self.end = len;
            return true;
        }
        let old = self.buf.len();
        let new = (old * 2).min(MAX_LINE_LEN);
        let budgeted = |size: usize| size.saturating_sub(UNBUDGETED_FRAME).div_ceil(BUDGET_UNIT);
        let units = budgeted(new) - budgeted(old);
        if units > 0 {
            let settings = &self.conn.state.settings;
            let deadline = deadline.unwrap_or_else(|| Instant::now() + settings.frame_timeout);
            match self.conn.state.frame_budget.take(units, deadline) {
                Some(grant) => self.grants.push(grant),
                None => return false,
            }
        }
        let mut grown = Zeroizing::new(vec![0; new]);
        grown[..self.end].copy_from_slice(&self.buf[..self.end]);
        // The old buffer is wiped as it is dropped.
        self.buf = grown;
        true
    }

    fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Wipes the line just read (and its `\n`); once nothing is pending, shrinks a grown
    /// buffer back and returns its budget.
    fn consume(&mut self) {
        self.buf[self.start..self.scanned].zeroize();
        self.start = self.scanned;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
            if self.buf.len() > INITIAL_BUFFER {
                self.buf = Zeroizing::new(vec![0; INITIAL_BUFFER]);
                self.grants.clear();
            }
        }
    }
}

/// Serves a JSON-lines connection to the end (the bincode path's `serve_requests` for JSON).
pub(super) fn serve(conn: &Connection, stream: &mut UnixStream) {
    // The session the latest AUTHENTICATE on this connection opened (§6.17, §6.18).
    let mut bound = cmd::ConnectionSession::default();
    let mut lines = LineReader::new(conn);
    let mut first = true;
    loop {
        let range = match lines.next(stream) {
            Line::Ready(range) => range,
            Line::Done => return,
            Line::TooLong => {
                tracing::debug!(pid = ?conn.peer.pid, "JSON line over the limit; closing");
                let _ = stream.write_all(&wire::encode_error(ErrorCode::ProtocolError, TOO_LONG));
                return;
            }
        };
        conn.registration.set_busy();
        let decoded = wire::decode_request(lines.line(range));
        lines.consume();
        let (response, close) = match decoded {
            // HELLO is optional, and checked only as the first line (§12.3); later it is the
            // dispatcher's PROTOCOL_ERROR, as on the bincode wire.
            Ok(Request::Hello { version }) if first => {
                let (answer, accepted) = greeting(version);
                (answer, !accepted)
            }
            Ok(request) => (
                cmd::dispatch(&conn.state, &conn.peer, request, &mut bound),
                false,
            ),
            Err(err) => {
                tracing::debug!(code = %err.code(), pid = ?conn.peer.pid, "bad JSON line");
                (error(err.code(), err.message()), err.closes())
            }
        };
        first = false;
        let answer = wire::encode_response(&response);
        drop(response);
        if stream.write_all(&answer).is_err() || close {
            return;
        }
    }
}

/// The answer refusing a connection before its first request (PROTOCOL.md §12.1.2): a JSON
/// line when the client's first byte has already arrived and is `{`, else `None` (the caller
/// sends the bincode frame).
pub fn refusal(stream: &UnixStream, response: &Response) -> Option<Zeroizing<Vec<u8>>> {
    let mut byte = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(stream.as_raw_fd(), &mut byte, flags) {
        Ok(1) if byte[0] == FIRST_BYTE => Some(wire::encode_response(response)),
        _ => None,
    }
}
