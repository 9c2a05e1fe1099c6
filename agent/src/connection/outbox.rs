//! Answers waiting to be written, so that the answers to requests a client sent together
//! leave together: one write, one wake-up of the client, where writing each answer as it
//! is ready woke it once per answer (`avp get`'s four).
//!
//! The reader sends the outbox before it reads from the socket, so an answer waits only
//! while the next request is already in the buffer; a client that sends one request at a
//! time gets each answer at once, as before. The outbox is also sent once it holds
//! [`FLUSH_AT`] bytes, which bounds what a client pipelining big answers can make the agent
//! hold. Answers carry secret values: each is its own zeroizing buffer, written without
//! being copied into another and wiped as it is dropped.

use std::io::{self, IoSlice, Write};
use std::os::unix::net::UnixStream;
use zeroize::Zeroizing;

/// Send once this many answer bytes are waiting.
const FLUSH_AT: usize = 64 << 10;

/// The answers not yet written, in order.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    answers: Vec<Zeroizing<Vec<u8>>>,
    bytes: usize,
}

impl Outbox {
    /// Queues `answer`; sends the outbox if it has grown past [`FLUSH_AT`]. False when the
    /// client cannot be written to (the connection is over).
    pub(super) fn push(&mut self, stream: &mut UnixStream, answer: Zeroizing<Vec<u8>>) -> bool {
        self.bytes += answer.len();
        self.answers.push(answer);
        self.bytes < FLUSH_AT || self.flush(stream)
    }

    /// Writes every waiting answer (one `writev` for several) and wipes them. False when the
    /// client cannot be written to (the write timeout passed, or it left).
    pub(super) fn flush(&mut self, stream: &mut UnixStream) -> bool {
        let written = match self.answers.as_slice() {
            [] => return true,
            [one] => stream.write_all(one),
            many => write_all_vectored(stream, many),
        };
        self.answers.clear();
        self.bytes = 0;
        written.is_ok()
    }
}

/// `Write::write_all_vectored`, which is not stable yet.
fn write_all_vectored(stream: &mut UnixStream, buffers: &[Zeroizing<Vec<u8>>]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = buffers.iter().map(|b| IoSlice::new(b)).collect();
    let mut left = slices.as_mut_slice();
    while !left.is_empty() {
        match stream.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
