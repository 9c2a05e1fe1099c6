//! Framing: a 4-byte big-endian length, then the payload. The length is checked against
//! [`MAX_FRAME_LEN`] before a single payload byte is allocated, on both peers.
//!
//! Reading separates three outcomes, as mini-redis does: a whole frame, *incomplete* (the
//! peer closed cleanly between frames: `Ok(None)`), and *invalid* (over the limit, cut off
//! mid-frame, undecodable: an error that ends this connection only).

use crate::codec::{self, DecodeError, EncodeError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// The largest payload either peer accepts or sends: 1 MiB.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// A whole frame or payload, in an exactly-sized buffer that is wiped on drop (frames carry
/// secret values and passphrases).
pub type FrameBuf = Zeroizing<Vec<u8>>;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME_LEN`]; nothing was allocated.
    #[error("frame of {0} bytes exceeds the 1 MiB limit")]
    TooLarge(u64),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The payload is not a valid message.
    #[error("malformed message")]
    Malformed,
    /// The payload is a message but a field was rejected; the connection may go on.
    #[error("{1} ({0})")]
    Rejected(crate::ErrorCode, &'static str),
    /// A message to send would exceed [`MAX_FRAME_LEN`], on the wire or as the peer's
    /// decoder counts it (see [`crate::codec`]); nothing was written.
    #[error("message exceeds the 1 MiB frame limit")]
    EncodeTooLarge,
    /// A message could not be encoded.
    #[error("message could not be encoded")]
    Encode,
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl From<DecodeError> for FrameError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Undecodable => Self::Malformed,
            DecodeError::Rejected(code, reason) => Self::Rejected(code, reason),
        }
    }
}

impl From<EncodeError> for FrameError {
    fn from(err: EncodeError) -> Self {
        match err {
            EncodeError::TooLarge => Self::EncodeTooLarge,
            EncodeError::Failed => Self::Encode,
        }
    }
}

/// Checks a length prefix against the limit.
pub fn payload_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header);
    let len = usize::try_from(len).map_err(|_| FrameError::TooLarge(u64::from(len)))?;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len as u64));
    }
    Ok(len)
}

/// Looks for one whole frame at the start of `buf`: `Ok(None)` if more bytes are needed,
/// `Ok(Some(n))` if the first `n` bytes are a whole frame, an error if the prefix is over
/// the limit. Never allocates.
pub fn check(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let total = HEADER_LEN + payload_len(*header)?;
    Ok((buf.len() >= total).then_some(total))
}

/// Encodes `message` as a whole frame (prefix included) in one exactly-sized buffer, so the
/// bytes are never copied by a growing vector.
pub fn encode<T: Serialize>(message: &T) -> Result<FrameBuf, FrameError> {
    let len = codec::encoded_len(message)?;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::EncodeTooLarge);
    }
    let mut frame = Zeroizing::new(vec![0u8; HEADER_LEN + len]);
    let prefix = u32::try_from(len).map_err(|_| FrameError::EncodeTooLarge)?;
    frame[..HEADER_LEN].copy_from_slice(&prefix.to_be_bytes());
    codec::encode_into(message, &mut frame[HEADER_LEN..])?;
    Ok(frame)
}

/// Decodes a message from a payload (the bytes after the prefix).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    Ok(codec::decode(payload)?)
}

/// Decodes the first whole frame of `buf`: `Ok(None)` if incomplete, else the message and
/// the number of bytes consumed.
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    match check(buf)? {
        None => Ok(None),
        Some(total) => Ok(Some((decode(&buf[HEADER_LEN..total])?, total))),
    }
}

/// Fills `buf` completely. `Ok(false)` if the stream ended before the first byte.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> Result<bool, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(true)
}

/// Reads one frame's payload from a blocking stream. `Ok(None)`: the peer closed cleanly
/// between frames.
pub fn read_payload(reader: &mut impl Read) -> Result<Option<FrameBuf>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    if !fill(reader, &mut header)? {
        return Ok(None);
    }
    let len = payload_len(header)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    if len > 0 && !fill(reader, &mut payload)? {
        return Err(FrameError::Truncated);
    }
    Ok(Some(payload))
}

/// Reads and decodes one message from a blocking stream.
pub fn read_message<T: DeserializeOwned>(reader: &mut impl Read) -> Result<Option<T>, FrameError> {
    match read_payload(reader)? {
        None => Ok(None),
        Some(payload) => decode(&payload).map(Some),
    }
}

/// Encodes and writes one message to a blocking stream.
pub fn write_message<T: Serialize>(writer: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let frame = encode(message)?;
    writer.write_all(&frame)?;
    writer.flush()?;
    Ok(())
}

/// Async counterparts of the blocking helpers, for tokio streams.
#[cfg(feature = "tokio")]
pub mod nonblocking {
    use super::*;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    async fn fill(
        reader: &mut (impl AsyncRead + Unpin),
        buf: &mut [u8],
    ) -> Result<bool, FrameError> {
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]).await {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(FrameError::Truncated),
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(true)
    }

    /// Reads one frame's payload. `Ok(None)`: the peer closed cleanly between frames.
    pub async fn read_payload(
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<Option<FrameBuf>, FrameError> {
        let mut header = [0u8; HEADER_LEN];
        if !fill(reader, &mut header).await? {
            return Ok(None);
        }
        let len = payload_len(header)?;
        let mut payload = Zeroizing::new(vec![0u8; len]);
        if len > 0 && !fill(reader, &mut payload).await? {
            return Err(FrameError::Truncated);
        }
        Ok(Some(payload))
    }

    /// Reads and decodes one message.
    pub async fn read_message<T: DeserializeOwned>(
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<Option<T>, FrameError> {
        match read_payload(reader).await? {
            None => Ok(None),
            Some(payload) => decode(&payload).map(Some),
        }
    }

    /// Encodes and writes one message.
    pub async fn write_message<T: Serialize>(
        writer: &mut (impl AsyncWrite + Unpin),
        message: &T,
    ) -> Result<(), FrameError> {
        let frame = encode(message)?;
        writer.write_all(&frame).await?;
        writer.flush().await?;
        Ok(())
    }
}
