//! The one place that knows stored records are bincode: every backend's plaintext records
//! (the local vault's snapshot and journal, Redis's envelopes) are encoded into and decoded
//! from locked buffers here, bounded by [`MAX_RECORD_LEN`].

use crate::locked::LockedBuf;
use bincode::config::{Configuration, Limit};
use serde::{Deserialize, Serialize};
use std::io;

/// Longest record accepted: a maximum value plus maximum labels, with room to spare.
pub const MAX_RECORD_LEN: usize = 1 << 20;

type Config =
    Configuration<bincode::config::LittleEndian, bincode::config::Varint, Limit<MAX_RECORD_LEN>>;
const CONFIG: Config = bincode::config::standard().with_limit::<MAX_RECORD_LEN>();

/// Encodes `record` into `buf`, resized to the exact length.
pub fn encode_into<T: Serialize>(record: &T, buf: &mut LockedBuf) -> io::Result<()> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(record, &mut size, CONFIG).map_err(invalid)?;
    buf.resize(size.bytes_written)?;
    let written =
        bincode::serde::encode_into_slice(record, buf.as_mut_slice(), CONFIG).map_err(invalid)?;
    if written != size.bytes_written {
        return Err(invalid("record size changed while encoding"));
    }
    Ok(())
}

/// Decodes one whole record from `bytes`, borrowing byte strings from it.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> io::Result<T> {
    match bincode::serde::borrow_decode_from_slice::<T, _>(bytes, CONFIG) {
        Ok((record, used)) if used == bytes.len() => Ok(record),
        Ok(_) => Err(invalid("trailing bytes after a record")),
        Err(err) => Err(invalid(err)),
    }
}

fn invalid(err: impl ToString) -> io::Error {
    // bincode's messages describe structure only (lengths, tags), never field contents.
    io::Error::new(io::ErrorKind::InvalidData, err.to_string())
}
