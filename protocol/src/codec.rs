//! The payload codec: the only module that knows frames carry bincode, so it can be swapped.
//!
//! bincode is pinned to 2.0.1 and always used with an explicit byte limit equal to the
//! maximum frame: its unlimited default would try to allocate whatever a 10-byte frame
//! claims (a 1 TiB string) and abort the process.
//!
//! That limit is not counted in wire bytes: bincode charges every integer at its fixed
//! width (a `u64` length costs 8 even when its varint is 1 byte). A message whose varint
//! encoding fits the frame can therefore still exceed the decoder's limit, so the encoder
//! also measures the fixed-width size and refuses to send what the peer would refuse to
//! read.

use crate::error::ErrorCode;
use crate::frame::MAX_FRAME_LEN;
use bincode::config::{Configuration, Fixint, Limit, LittleEndian, NoLimit, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

type Config = Configuration<LittleEndian, Varint, Limit<MAX_FRAME_LEN>>;

const CONFIG: Config = bincode::config::standard().with_limit::<MAX_FRAME_LEN>();

/// The same layout with fixed-width integers: its size is what [`CONFIG`]'s limit charges
/// when decoding (lengths and variant indices at 8 and 4 bytes, integers at their width).
const CHARGED: Configuration<LittleEndian, Fixint, NoLimit> =
    bincode::config::standard().with_fixed_int_encoding();

/// Why a payload could not be turned into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a message at all; the connection cannot be trusted any further.
    #[error("undecodable payload")]
    Undecodable,
    /// The message is well-formed but a field was rejected by validation (an invalid name,
    /// too many labels…). The frame boundary is intact, so the connection can go on.
    #[error("rejected field ({0})")]
    Rejected(ErrorCode, &'static str),
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message would exceed the maximum frame length, or the decoder's
    /// fixed-width accounting of it would.
    #[error("message larger than the maximum frame")]
    TooLarge,
    /// The serializer failed.
    #[error("message could not be encoded")]
    Failed,
}

/// The exact encoded size of `message`; [`EncodeError::TooLarge`] if the peer's decoder
/// would refuse it (see the module documentation).
pub fn encoded_len<T: Serialize>(message: &T) -> Result<usize, EncodeError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(message, &mut size, CONFIG).map_err(map_encode)?;
    // A fixed-width integer is at most 8 times its varint (1 byte → 8; the protocol has no
    // 128-bit integers) and byte strings are the same in both, so only a message within 8×
    // of the limit needs the second measurement — never the small answers on the hot path.
    if size.bytes_written.saturating_mul(MAX_FIXINT_GROWTH) > MAX_FRAME_LEN {
        let mut charged = bincode::enc::write::SizeWriter::default();
        bincode::serde::encode_into_writer(message, &mut charged, CHARGED).map_err(map_encode)?;
        if charged.bytes_written > MAX_FRAME_LEN {
            return Err(EncodeError::TooLarge);
        }
    }
    Ok(size.bytes_written)
}

/// What `message` costs against the frame limit: the larger of its encoded size and the
/// decoder's fixed-width charge for it (see the module documentation). A sequence costs the
/// sum of its elements plus its length, so a sender can add up the costs of the parts of a
/// message to keep the whole within [`MAX_FRAME_LEN`] before building it.
pub fn frame_cost<T: Serialize>(message: &T) -> Result<usize, EncodeError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(message, &mut size, CONFIG).map_err(map_encode)?;
    let mut charged = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(message, &mut charged, CHARGED).map_err(map_encode)?;
    Ok(size.bytes_written.max(charged.bytes_written))
}

/// The most a value's fixed-width encoding can exceed its varint encoding, as a factor.
const MAX_FIXINT_GROWTH: usize = 8;

/// Encodes `message` into `dst`, which must be exactly [`encoded_len`] bytes long.
pub fn encode_into<T: Serialize>(message: &T, dst: &mut [u8]) -> Result<(), EncodeError> {
    let written = bincode::serde::encode_into_slice(message, dst, CONFIG).map_err(map_encode)?;
    if written == dst.len() {
        Ok(())
    } else {
        Err(EncodeError::Failed)
    }
}

fn map_encode(err: bincode::error::EncodeError) -> EncodeError {
    match err {
        bincode::error::EncodeError::UnexpectedEnd => EncodeError::TooLarge,
        _ => EncodeError::Failed,
    }
}

/// Decodes one whole message from `payload`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    match bincode::serde::decode_from_slice::<T, _>(payload, CONFIG) {
        Ok((message, used)) if used == payload.len() => Ok(message),
        Ok(_) => Err(DecodeError::Undecodable),
        Err(err) => Err(classify(&err)),
    }
}

/// Turns a validation failure raised inside a newtype's `Deserialize` (carried as
/// `"CODE: reason"`) back into its code; anything else is undecodable.
fn classify(err: &bincode::error::DecodeError) -> DecodeError {
    let bincode::error::DecodeError::OtherString(text) = err else {
        return DecodeError::Undecodable;
    };
    let Some((code, detail)) = text.split_once(": ") else {
        return DecodeError::Undecodable;
    };
    match code.parse::<ErrorCode>() {
        Ok(code) => DecodeError::Rejected(code, rejection_reason(code, detail)),
        Err(_) => DecodeError::Undecodable,
    }
}

/// The validated types' own reasons for `INVALID_REQUEST`, so a client learns which field
/// was wrong. Only these fixed texts are ever passed on: the decoded text is matched
/// against them, never kept.
const INVALID_REQUEST_REASONS: &[&str] = &[
    "a label key is 1 to 128 bytes",
    "a label value is at most 1024 bytes",
    "a passphrase must be UTF-8",
    "malformed list cursor",
];

/// A fixed message per code, so no decoded text (which could hold request bytes) is kept.
fn rejection_reason(code: ErrorCode, detail: &str) -> &'static str {
    match code {
        ErrorCode::InvalidRequest => INVALID_REQUEST_REASONS
            .iter()
            .find(|known| **known == detail)
            .copied()
            .unwrap_or("invalid field in request"),
        ErrorCode::InvalidName => {
            "invalid secret name: use 1-255 ASCII letters, digits, '_', '.', '-', starting with a letter"
        }
        ErrorCode::InvalidWorkspace => {
            "invalid workspace id: use 1-255 ASCII letters, digits, '_', '.', '/', '-' with no empty or '..' segment"
        }
        ErrorCode::SessionNotFound => "no such session: authenticate again",
        ErrorCode::CapacityExceeded => "too many labels: a secret has at most 64",
        _ => "rejected field in request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Labels;
    use std::collections::BTreeMap;

    fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
        let mut buf = vec![0; encoded_len(value).unwrap()];
        encode_into(value, &mut buf).unwrap();
        buf
    }

    #[test]
    fn rejections_name_the_field_without_quoting_it() {
        let long_key = BTreeMap::from([("MARKER".repeat(30), "v".to_owned())]);
        assert_eq!(
            decode::<Labels>(&encoded(&long_key)),
            Err(DecodeError::Rejected(
                ErrorCode::InvalidRequest,
                "a label key is 1 to 128 bytes"
            ))
        );
        let long_value = BTreeMap::from([("k".to_owned(), "v".repeat(1025))]);
        assert_eq!(
            decode::<Labels>(&encoded(&long_value)),
            Err(DecodeError::Rejected(
                ErrorCode::InvalidRequest,
                "a label value is at most 1024 bytes"
            ))
        );
    }
}
