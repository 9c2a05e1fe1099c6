//! The records stored in Redis and their encryption. Each is one age file encrypted to the
//! vault's X25519 recipient, whose plaintext is a bincode [`Envelope`] (see
//! [`crate::storage::codec`] for the codec and its limits):
//!
//! - a **metadata record** per secret: workspace, name, labels, times, expiry and the list
//!   of retained versions (number, time, tag) — everything LIST and HISTORY need, no value;
//! - a **value record** per retained version: workspace, name, version number, tag, value.
//!
//! Each record names where it belongs, and opening one checks that against where it was
//! read from: a record moved to another secret, version or workspace (by anyone who can
//! write to Redis but lacks the key) fails with `INTEGRITY_ERROR` instead of answering
//! with the wrong secret. What is not detected is a rollback of a whole secret to an older
//! state captured earlier — the same limit as restoring an old copy of a vault directory.

use crate::locked::LockedBuf;
use crate::storage::BackendError;
use crate::storage::codec::{decode, encode_into};
use crate::storage::crypto;
use age::secrecy::ExposeSecret;
use avp_protocol::{Labels, SecretMeta, SecretName, SecretValue, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::str::FromStr;

/// Identifies this record format inside the ciphertext.
const MAGIC: [u8; 8] = *b"avpredi1";

/// One retained version, as listed in the metadata record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    /// The version number.
    pub number: u32,
    /// When it was written.
    pub created_at: Timestamp,
    /// Its random tag: the field of its value record.
    pub tag: String,
}

/// A secret's metadata: the decrypted metadata record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The secret.
    pub name: SecretName,
    /// When the secret was first created (kept across versions).
    pub created_at: Timestamp,
    /// The labels.
    pub labels: Labels,
    /// The expiry.
    pub expires_at: Option<Timestamp>,
    /// Retained versions, oldest first; never empty (checked on open).
    pub versions: Vec<VersionRef>,
}

impl Meta {
    /// The current version.
    pub fn current(&self) -> &VersionRef {
        // Invariant: `open_meta` refuses a record without versions.
        &self.versions[self.versions.len() - 1]
    }

    /// True once `expires_at` has passed.
    pub fn expired(&self, now: Timestamp) -> bool {
        crate::rules::is_expired(self.expires_at, now)
    }

    /// The LIST form.
    pub fn to_secret_meta(&self) -> SecretMeta {
        SecretMeta {
            name: self.name.clone(),
            version: self.current().number,
            labels: self.labels.clone(),
            created_at: self.created_at,
            updated_at: self.current().created_at,
            expires_at: self.expires_at,
        }
    }
}

/// What a value record says about itself.
#[derive(Debug, Clone, Copy)]
pub struct ValueHome<'a> {
    /// The workspace.
    pub workspace: &'a WorkspaceId,
    /// The secret.
    pub name: &'a SecretName,
    /// The version number.
    pub version: u32,
    /// The version tag.
    pub tag: &'a str,
}

#[derive(Serialize, Deserialize)]
enum Record<'a> {
    Meta(Cow<'a, Meta>),
    Value {
        workspace: Cow<'a, WorkspaceId>,
        name: Cow<'a, SecretName>,
        version: u32,
        #[serde(borrow)]
        tag: Cow<'a, str>,
        #[serde(borrow)]
        value: &'a [u8],
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    magic: [u8; 8],
    #[serde(borrow)]
    record: Record<'a>,
}

/// Encrypts and decrypts records. Holds the private key while the vault is unlocked (reads
/// decrypt) — as its `AGE-SECRET-KEY-1…` text in locked memory (never swapped, left out of
/// core dumps), wiped when the sealer is dropped at LOCK.
///
/// `age` keeps an identity in ordinary memory, so none is kept: each decryption parses a
/// transient one from the locked text, on the heap, and drops it right after (x25519-dalek
/// zeroizes its scalar on drop, and the agent's allocator wipes every freed block). The
/// residual window: during a decryption the scalar is also in that heap block and in
/// stack frames of age and x25519-dalek, which the stack reuse of later calls overwrites
/// but nothing wipes on purpose.
pub struct Sealer {
    secret: LockedBuf,
    recipient: age::x25519::Recipient,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("recipient", &self.recipient.to_string())
            .finish_non_exhaustive()
    }
}

fn moved() -> BackendError {
    BackendError::Integrity(
        "a record in Redis is not where it belongs (moved or altered): restore Redis from a backup",
    )
}

fn undecryptable() -> BackendError {
    BackendError::Integrity(
        "a record in Redis does not decrypt with this vault's key (altered, or written by \
         another vault): restore Redis from a backup",
    )
}

impl Sealer {
    /// A sealer for the vault whose identity this is. The caller's copy is for it to drop.
    pub fn new(identity: &age::x25519::Identity) -> Result<Self, BackendError> {
        let text = identity.to_string();
        let text = text.expose_secret().as_bytes();
        let mut secret = LockedBuf::new(text.len())
            .map_err(|_| BackendError::Encryption("cannot keep the vault key in locked memory"))?;
        secret.as_mut_slice().copy_from_slice(text);
        Ok(Self {
            secret,
            recipient: identity.to_public(),
        })
    }

    /// A transient identity for one decryption (see the type's docs).
    fn identity(&self) -> Result<Box<age::x25519::Identity>, BackendError> {
        let broken = || BackendError::Encryption("the vault key in memory is unreadable");
        let text = std::str::from_utf8(self.secret.as_slice()).map_err(|_| broken())?;
        age::x25519::Identity::from_str(text)
            .map(Box::new)
            .map_err(|_| broken())
    }

    fn seal(&self, record: Record<'_>) -> Result<Vec<u8>, BackendError> {
        let fail = |_| BackendError::Encryption("cannot encode a record in locked memory");
        let mut plain = LockedBuf::new(0).map_err(fail)?;
        encode_into(
            &Envelope {
                magic: MAGIC,
                record,
            },
            &mut plain,
        )
        .map_err(fail)?;
        crypto::encrypt(&self.recipient, plain.as_slice())
    }

    fn open<T>(
        &self,
        ciphertext: &[u8],
        read: impl FnOnce(Record<'_>) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let identity = self.identity()?;
        let plain = crypto::decrypt(ciphertext, identity.as_ref()).map_err(|err| {
            tracing::warn!(%err, "a Redis record did not decrypt");
            undecryptable()
        })?;
        drop(identity);
        let envelope: Envelope<'_> = decode(plain.as_slice()).map_err(|_| undecryptable())?;
        if envelope.magic != MAGIC {
            return Err(undecryptable());
        }
        read(envelope.record)
    }

    /// Encrypts a metadata record.
    pub fn seal_meta(&self, meta: &Meta) -> Result<Vec<u8>, BackendError> {
        self.seal(Record::Meta(Cow::Borrowed(meta)))
    }

    /// Decrypts a metadata record, refusing it unless `at_home` agrees it belongs where it
    /// was read from (see [`KeyNames::is_home`]).
    pub fn open_meta(
        &self,
        ciphertext: &[u8],
        at_home: impl FnOnce(&Meta) -> bool,
    ) -> Result<Meta, BackendError> {
        let meta = self.open(ciphertext, |record| match record {
            Record::Meta(meta) => Ok(meta.into_owned()),
            Record::Value { .. } => Err(moved()),
        })?;
        if meta.versions.is_empty() || !at_home(&meta) {
            return Err(moved());
        }
        Ok(meta)
    }

    /// Encrypts a value record.
    pub fn seal_value(&self, home: ValueHome<'_>, value: &[u8]) -> Result<Vec<u8>, BackendError> {
        self.seal(Record::Value {
            workspace: Cow::Borrowed(home.workspace),
            name: Cow::Borrowed(home.name),
            version: home.version,
            tag: Cow::Borrowed(home.tag),
            value,
        })
    }

    /// Decrypts a value record, checking it is the version `home` says, into a
    /// [`SecretValue`] (the plaintext passes only through a locked buffer).
    pub fn open_value(
        &self,
        ciphertext: &[u8],
        home: ValueHome<'_>,
    ) -> Result<SecretValue, BackendError> {
        self.open(ciphertext, |record| match record {
            Record::Value {
                workspace,
                name,
                version,
                tag,
                value,
            } if *workspace == *home.workspace
                && *name == *home.name
                && version == home.version
                && tag == home.tag =>
            {
                Ok(SecretValue::from_slice(value))
            }
            _ => Err(moved()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn meta(ws: &str, name: &str) -> Meta {
        Meta {
            workspace: WorkspaceId::new(ws).unwrap(),
            name: SecretName::new(name).unwrap(),
            created_at: Timestamp::from_unix(1),
            labels: Labels::empty(),
            expires_at: None,
            versions: vec![VersionRef {
                number: 1,
                created_at: Timestamp::from_unix(1),
                tag: "00".repeat(16),
            }],
        }
    }

    use crate::storage::redis::keys::KeyNames;

    #[test]
    fn records_round_trip_and_are_bound_to_their_place() {
        let identity = age::x25519::Identity::generate();
        let names = KeyNames::derive(&identity).unwrap();
        let sealer = Sealer::new(&identity).unwrap();
        let m = meta("w", "API_MARKER");
        let sealed = sealer.seal_meta(&m).unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"MARKER"));
        let w = names.workspace(&m.workspace).tag;
        let s = names.secret(&m.workspace, &m.name).field;
        let known = OnceLock::new();
        let meta_home = |field: &str| {
            let (names, w, field, known) = (&names, w.clone(), field.to_owned(), &known);
            move |meta: &Meta| names.is_home(&meta.workspace, &meta.name, &w, &field, known)
        };
        assert_eq!(sealer.open_meta(&sealed, meta_home(&s)).unwrap(), m);
        let other = names
            .secret(&m.workspace, &SecretName::new("OTHER").unwrap())
            .field;
        let err = sealer.open_meta(&sealed, meta_home(&other)).unwrap_err();
        assert!(matches!(err, BackendError::Integrity(_)));

        let tag = "ab".repeat(16);
        let home = ValueHome {
            workspace: &m.workspace,
            name: &m.name,
            version: 3,
            tag: &tag,
        };
        let value = sealer.seal_value(home, b"\x00value-MARKER").unwrap();
        assert!(!value.windows(6).any(|w| w == b"MARKER"));
        let back = sealer.open_value(&value, home).unwrap();
        assert_eq!(back.expose_secret(), b"\x00value-MARKER");
        let wrong_version = ValueHome { version: 2, ..home };
        assert!(matches!(
            sealer.open_value(&value, wrong_version),
            Err(BackendError::Integrity(_))
        ));
        // A value record is never accepted as metadata, nor the reverse.
        assert!(sealer.open_meta(&value, meta_home(&s)).is_err());
        assert!(sealer.open_value(&sealed, home).is_err());
    }

    #[test]
    fn another_vaults_records_do_not_open() {
        let ours = Sealer::new(&age::x25519::Identity::generate()).unwrap();
        let theirs = Sealer::new(&age::x25519::Identity::generate()).unwrap();
        let m = meta("w", "k");
        let sealed = theirs.seal_meta(&m).unwrap();
        assert!(matches!(
            ours.open_meta(&sealed, |_| true),
            Err(BackendError::Integrity(_))
        ));
    }
}
