//! Shared by the integration tests: proptest strategies for every validated type and every
//! message ([`strategies`]), one fixed example of every `Request` and `Response` variant
//! ([`examples`]), helpers that build raw frames, and readers that hand bytes over as slowly
//! and awkwardly as a real socket may.
//!
//! Each test binary uses a subset of this module, hence the `dead_code` and
//! `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

pub mod examples;
pub mod strategies;

pub use examples::*;
pub use strategies::*;

use avp_protocol::frame;
use serde::Serialize;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

// ---------------------------------------------------------------------------------------
// Building raw frames
// ---------------------------------------------------------------------------------------

/// The bincode payload of `value`, without a length prefix. A tuple encodes as the
/// concatenation of its fields and an enum as its variant index then its fields, so
/// `payload(&(5u32, "avp_sess_…", "name", None::<u32>))` is a `Request::Retrieve` whose
/// strings skipped validation.
pub fn payload<T: Serialize>(value: &T) -> Vec<u8> {
    frame::encode(value).expect("encodable")[frame::HEADER_LEN..].to_vec()
}

/// A frame around `payload` with an honest length prefix.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("test payloads are small");
    [&len.to_be_bytes()[..], payload].concat()
}

/// The bincode varint of a length, as a length prefix inside a payload would be written.
pub fn varint(len: u64) -> Vec<u8> {
    payload(&len)
}

/// A well-formed session id, as text, for hand-built frames.
pub fn session_text() -> String {
    avp_protocol::SessionId::generate()
        .expect("OS random generator")
        .expose()
        .to_owned()
}

// ---------------------------------------------------------------------------------------
// Awkward readers
// ---------------------------------------------------------------------------------------

/// Hands out one byte per read, with an `Interrupted` error (blocking) or a `Pending`
/// (async) before every byte: the readers must retry and resume without losing a byte.
#[derive(Debug)]
pub struct Trickle<'a> {
    bytes: &'a [u8],
    stall: bool,
}

impl<'a> Trickle<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, stall: true }
    }

    fn next_byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.stall = !self.stall;
        if !self.stall {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match self.next_byte() {
            Some(byte) => {
                buf[0] = byte;
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

impl tokio::io::AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stall = !self.stall;
        if !self.stall {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if buf.remaining() > 0
            && let Some(byte) = self.next_byte()
        {
            buf.put_slice(&[byte]);
        }
        Poll::Ready(Ok(()))
    }
}

/// A single-threaded runtime for driving the async helpers from a plain test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}
