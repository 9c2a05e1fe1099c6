//! The JSON-lines encoding of requests and answers (PROTOCOL.md §12): a second encoding of
//! the same [`Request`](crate::Request) and [`Response`](crate::Response) values, so every
//! rule the agent applies to a request is the one code path both wires share.
//!
//! - [`request`]: one line → a [`Request`](crate::Request), or why not (and whether the
//!   connection goes on).
//! - [`response`]: a [`Response`](crate::Response) → one line, in a zeroizing buffer.
//! - [`encode`]: a [`Request`](crate::Request) → one line, for clients and tests.
//! - [`time`]: RFC 3339 in and out.
//!
//! Secret hygiene: a request line is parsed in place — fields are borrowed `RawValue`s of the
//! caller's (zeroizing) line buffer, never a `serde_json::Value` — and a value's base64 is
//! decoded straight into the [`SecretValue`](crate::SecretValue) that carries it. Answers
//! are written into a [`zeroize::Zeroizing`] buffer, a RETRIEVE's base64 text included.

pub mod encode;
pub mod request;
pub mod response;
pub mod time;

pub use encode::encode_request;
pub use request::{JsonError, decode_request};
pub use response::{encode_error, encode_response};

/// The first byte of every JSON connection (PROTOCOL.md §12.1.1). A bincode frame can never
/// start with it: its first byte is the high byte of a length of at most 1 MiB, always 0.
pub const FIRST_BYTE: u8 = b'{';

/// The longest request line, its `\n` included (PROTOCOL.md §12.2.2): the frame limit.
pub const MAX_LINE_LEN: usize = crate::frame::MAX_FRAME_LEN;
