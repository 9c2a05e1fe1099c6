//! The connection's receive buffer, for both wires: bincode frames and JSON lines.
//!
//! Why a buffer. A client may write several requests at once (`avp get` sends Hello,
//! Authenticate, Retrieve and Terminate in one write; `printf 'a\nb\n' | socat` does the
//! same with lines): one `read` then takes them all, and the answers go back in one write
//! (`outbox`), so the client is woken once instead of once per answer. For a lone request
//! it is one `read` where reading a frame's header and then its payload took two.
//!
//! Memory. The buffer is zeroizing, starts at 4 KiB and grows only as far as a message
//! needs, never past the wire's limit (1 MiB): an over-long line is refused as soon as the
//! limit is passed and a frame whose length prefix is over it as soon as the prefix is in,
//! before anything more is read. Growth past [`UNBUDGETED_FRAME`] draws on the agent-wide
//! frame budget, waiting at most until the message's deadline. A message is wiped from the
//! buffer as soon as it is decoded (before dispatch); bytes a client sent ahead stay until
//! their turn, and once the buffer is empty it shrinks back to 4 KiB, wiped, so nothing a
//! client sent outlives its request in the agent's memory — a secret value or a passphrase
//! must not still be there after LOCK because the connection stayed open.
//!
//! Waits. With nothing buffered, the read waits at most the idle timeout; once part of a
//! message is in, the whole of it must arrive within the frame timeout (a slow-loris client
//! cannot hold a slot), and the connection's registration says so (idle → reading), so the
//! cap evicts a slow sender first.

use super::outbox::Outbox;
use super::{Connection, UNBUDGETED_FRAME, read_some, read_within};
use crate::state::BUDGET_UNIT;
use crate::sync::Grant;
use avp_protocol::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN};
use avp_protocol::json::MAX_LINE_LEN;
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::time::Instant;
use zeroize::{Zeroize, Zeroizing};

/// The buffer's size between messages: every ordinary request fits.
const INITIAL_BUFFER: usize = 4 << 10;

/// How messages are delimited on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// Length-prefixed bincode frames (PROTOCOL.md §2).
    Frames,
    /// `\n`-terminated JSON lines (PROTOCOL.md §12).
    Lines,
}

impl Wire {
    /// The most the buffer may hold while one message is incomplete.
    fn limit(self) -> usize {
        match self {
            Self::Frames => HEADER_LEN + MAX_FRAME_LEN,
            Self::Lines => MAX_LINE_LEN,
        }
    }
}

/// Why reading a message stopped.
pub(super) enum Message {
    /// A whole message at this range of the buffer: a frame's payload (without its length
    /// prefix), or a line (without its `\n`).
    Ready(Range<usize>),
    /// The client left, went idle too long, cut a message off, was evicted, or the agent is
    /// shutting down: close without a word.
    Done,
    /// The message is over the wire's limit (a frame's length prefix, or a line without a
    /// `\n` in the first 1 MiB): answer and close.
    TooLarge,
}

/// How far the message at the front of the buffer has arrived.
enum Progress {
    /// Whole, at this range (as [`Message::Ready`]).
    Whole(Range<usize>),
    /// Not yet: the buffer must hold this many bytes from the message's start.
    Needs(usize),
}

/// The connection's receive buffer: `buf[start..end]` holds bytes received and not yet
/// consumed; for lines, `buf[start..scanned]` is known to hold no `\n`.
pub(super) struct Reader<'c> {
    conn: &'c Connection,
    wire: Wire,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    scanned: usize,
    /// Where the message last handed out ends (its `\n` or frame included).
    taken: usize,
    /// The frame-budget units held for the buffer's size beyond [`UNBUDGETED_FRAME`].
    grants: Vec<Grant<'c>>,
}

impl<'c> Reader<'c> {
    pub(super) fn new(conn: &'c Connection, wire: Wire) -> Self {
        Self {
            conn,
            wire,
            buf: Zeroizing::new(vec![0; INITIAL_BUFFER]),
            start: 0,
            end: 0,
            scanned: 0,
            taken: 0,
            grants: Vec::new(),
        }
    }

    /// The next whole message, reading from `stream` only when none is buffered. Before any
    /// read, `outbox`'s answers are sent: the client may be waiting for them before it sends
    /// more.
    pub(super) fn next(&mut self, stream: &mut UnixStream, outbox: &mut Outbox) -> Message {
        let settings = &self.conn.state.settings;
        let mut deadline = None;
        loop {
            let needed = match self.complete() {
                Ok(Progress::Whole(range)) => return Message::Ready(range),
                Ok(Progress::Needs(bytes)) => bytes,
                Err(_) => return Message::TooLarge,
            };
            if !outbox.flush(stream) {
                return Message::Done;
            }
            let pending = self.end > self.start;
            let deadline = match (pending, deadline) {
                (false, _) => None,
                (true, Some(at)) => Some(at),
                (true, None) => {
                    // Mid-message: first in line for eviction at the cap until it is whole.
                    self.conn.registration.set_reading();
                    let at = Instant::now() + settings.frame_timeout;
                    deadline = Some(at);
                    Some(at)
                }
            };
            if self.end == self.buf.len() && !self.make_room(needed, deadline) {
                return Message::Done;
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
                        _ => return Message::Done,
                    }
                }
                Some(at) => match read_within(stream, &self.conn.timeout, room, at) {
                    Ok(n) => n,
                    Err(err) => {
                        tracing::debug!(error = %err, pid = ?self.conn.peer.pid, "message cut off or not completed in time");
                        return Message::Done;
                    }
                },
            };
            self.end += got;
        }
    }

    /// The whole message at the front of the buffer, or how many bytes the buffer must hold
    /// for it to be whole, as far as is known yet; an error past the wire's limit.
    fn complete(&mut self) -> Result<Progress, FrameError> {
        let held = &self.buf[self.start..self.end];
        match self.wire {
            Wire::Frames => {
                let Some(header) = held.first_chunk::<HEADER_LEN>() else {
                    return Ok(Progress::Needs(HEADER_LEN));
                };
                let total = HEADER_LEN + frame::payload_len(*header)?;
                if held.len() < total {
                    return Ok(Progress::Needs(total));
                }
                self.taken = self.start + total;
                Ok(Progress::Whole(self.start + HEADER_LEN..self.taken))
            }
            Wire::Lines => {
                let unscanned = &self.buf[self.scanned..self.end];
                if let Some(at) = unscanned.iter().position(|&b| b == b'\n') {
                    let newline = self.scanned + at;
                    self.scanned = newline + 1;
                    self.taken = self.scanned;
                    return Ok(Progress::Whole(self.start..newline));
                }
                self.scanned = self.end;
                let held = self.end - self.start;
                if held >= MAX_LINE_LEN {
                    return Err(FrameError::TooLarge(held as u64));
                }
                Ok(Progress::Needs(held + 1))
            }
        }
    }

    /// Frees space at the end of a full buffer: moves a partial message to the front, or
    /// grows the buffer — to the `needed` size a frame's prefix announced, doubling for a
    /// line — the growth past [`UNBUDGETED_FRAME`] granted by the frame budget before
    /// `deadline`. False when the budget never had room.
    fn make_room(&mut self, needed: usize, deadline: Option<Instant>) -> bool {
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
        let new = needed.max(old * 2).min(self.wire.limit());
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

    /// The bytes of a message [`next`](Self::next) returned.
    pub(super) fn message(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Wipes the message just read (its prefix or `\n` included); once nothing is pending,
    /// shrinks a grown buffer back and returns its budget.
    pub(super) fn consume(&mut self) {
        self.buf[self.start..self.taken].zeroize();
        self.start = self.taken;
        self.scanned = self.scanned.max(self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
            self.taken = 0;
            if self.buf.len() > INITIAL_BUFFER {
                self.buf = Zeroizing::new(vec![0; INITIAL_BUFFER]);
                self.grants.clear();
            }
        }
    }
}
