//! Secret-carrying types. Their bytes live in an exactly-sized heap allocation that is
//! zeroized on drop; they have a redacted `Debug`, no `Display` and no `Clone`, and are read
//! only through `expose_secret()`.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A secret value: any byte string (empty and non-UTF-8 included), wiped when dropped.
///
/// Never cloned implicitly: a copy of a secret is a deliberate act
/// ([`SecretValue::duplicate`]).
pub struct SecretValue(Box<[u8]>);

impl SecretValue {
    /// Copies `bytes` into a fresh, exactly-sized buffer.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(Box::from(bytes))
    }

    /// Takes ownership of `bytes`. If the vector has spare capacity its contents are copied
    /// to an exact buffer and the vector is wiped, so no stray copy survives a reallocation.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.len() == bytes.capacity() {
            Self(bytes.into_boxed_slice())
        } else {
            let bytes = Zeroizing::new(bytes);
            Self::from_slice(&bytes)
        }
    }

    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret: the limits are enforced on it).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An explicit copy, for the rare place that must keep one (e.g. a version history).
    pub fn duplicate(&self) -> Self {
        Self::from_slice(&self.0)
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue([REDACTED; {} bytes])", self.0.len())
    }
}

impl PartialEq for SecretValue {
    /// Constant-time, so comparing a guess against a secret leaks nothing through timing.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretValue {}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

/// Builds a [`SecretValue`] from whichever byte form a deserializer offers, without
/// ever holding the bytes in a buffer that is not wiped.
struct SecretBytesVisitor;

impl<'de> Visitor<'de> for SecretBytesVisitor {
    type Value = SecretValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<SecretValue, E> {
        Ok(SecretValue::from_slice(bytes))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<SecretValue, E> {
        Ok(SecretValue::from_vec(bytes))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<SecretValue, A::Error> {
        // Self-describing formats (JSON in tests) send bytes as a sequence. Reserve the
        // whole (bounded) size up front so the buffer never reallocates.
        let hint = seq.size_hint().unwrap_or(0).min(crate::MAX_FRAME_LEN);
        let mut bytes = Zeroizing::new(Vec::with_capacity(hint));
        while let Some(byte) = seq.next_element::<u8>()? {
            if bytes.len() == bytes.capacity() {
                return Err(de::Error::custom("byte sequence longer than announced"));
            }
            bytes.push(byte);
        }
        Ok(SecretValue::from_slice(&bytes))
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(SecretBytesVisitor)
    }
}

/// A passphrase: UTF-8 text, wiped when dropped, never printed.
#[derive(PartialEq, Eq)]
pub struct Passphrase(SecretValue);

impl Passphrase {
    /// Wraps a passphrase typed by a person.
    pub fn new(text: &str) -> Self {
        Self(SecretValue::from_slice(text.as_bytes()))
    }

    /// Takes ownership of a passphrase string, wiping any spare capacity.
    pub fn from_string(text: String) -> Self {
        Self(SecretValue::from_vec(text.into_bytes()))
    }

    /// The passphrase text.
    pub fn expose_secret(&self) -> &str {
        // Constructed only from `&str`/`String` or validated UTF-8 on deserialize.
        std::str::from_utf8(self.0.expose_secret()).unwrap_or_default()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty passphrase.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([REDACTED])")
    }
}

impl Serialize for Passphrase {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = SecretValue::deserialize(deserializer)?;
        if std::str::from_utf8(bytes.expose_secret()).is_err() {
            return Err(de::Error::custom(
                "INVALID_REQUEST: a passphrase must be UTF-8",
            ));
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let value = SecretValue::from_slice(b"MARKER-hunter2");
        assert!(!format!("{value:?}").contains("MARKER"));
        let pass = Passphrase::new("MARKER-correct horse");
        assert!(!format!("{pass:?}").contains("MARKER"));
    }

    #[test]
    fn from_vec_with_spare_capacity_keeps_the_bytes() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"abc");
        assert_eq!(SecretValue::from_vec(v).expose_secret(), b"abc");
    }
}
