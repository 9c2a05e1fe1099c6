//! The plaintext record formats inside the vault's age files. They are encoded and decoded
//! by [`crate::storage::codec`], into and from locked buffers; a value is borrowed from the
//! buffer while decoding, never copied into an ordinary `Vec`.
//!
//! - A snapshot is `[u32 BE length][SnapshotHeader]` followed by `records` times
//!   `[u32 BE length][Op::Put]`.
//! - A journal entry is one [`JournalEntry`], alone in its own age file.
//!
//! Every record carries the vault's random id; journal entries also carry the snapshot
//! generation they extend and a sequence number, so entries cannot be moved between vaults,
//! replayed over a newer snapshot, dropped from the middle or reordered without unlock
//! failing with `INTEGRITY_ERROR`.

use crate::storage::index::{Change, PutMeta};
use avp_protocol::{Labels, SecretName, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};

/// Identifies the snapshot format.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"avpsnap1";

/// A vault's random identity, fixed at `init`.
pub type VaultId = [u8; 16];

/// The first record of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// [`SNAPSHOT_MAGIC`].
    pub magic: [u8; 8],
    /// The vault this snapshot belongs to.
    pub vault_id: VaultId,
    /// Bumped by each compaction; names the journal that extends this snapshot.
    pub generation: u64,
    /// Records that follow.
    pub records: u64,
}

/// One change, as stored.
#[derive(Debug, Serialize, Deserialize)]
pub enum Op<'a> {
    /// A new version.
    Put {
        /// The workspace.
        workspace: WorkspaceId,
        /// The secret.
        name: SecretName,
        /// The version written.
        version: u32,
        /// When the secret was created.
        created_at: Timestamp,
        /// When this version was written.
        updated_at: Timestamp,
        /// Labels from this version on.
        labels: Labels,
        /// Expiry from this version on.
        expires_at: Option<Timestamp>,
        /// The value, borrowed from the locked buffer it was decoded from.
        #[serde(borrow)]
        value: &'a [u8],
    },
    /// A delete of every version.
    Delete {
        /// The workspace.
        workspace: WorkspaceId,
        /// The secret.
        name: SecretName,
    },
}

impl<'a> Op<'a> {
    /// The stored form of a new version.
    pub fn put(meta: &PutMeta, value: &'a [u8]) -> Self {
        Self::Put {
            workspace: meta.workspace.clone(),
            name: meta.name.clone(),
            version: meta.version,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            labels: meta.labels.clone(),
            expires_at: meta.expires_at,
            value,
        }
    }

    /// The stored form of a change.
    pub fn from_change(change: &'a Change) -> Self {
        match change {
            Change::Put { meta, value } => Self::put(meta, value.expose_secret()),
            Change::Delete { workspace, name } => Self::Delete {
                workspace: workspace.clone(),
                name: name.clone(),
            },
        }
    }
}

/// One journal entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct JournalEntry<'a> {
    /// The vault it belongs to.
    pub vault_id: VaultId,
    /// The snapshot generation it extends.
    pub generation: u64,
    /// Its position in the journal, from 0.
    pub seq: u64,
    /// The change.
    #[serde(borrow)]
    pub op: Op<'a>,
}

/// The resolved metadata of a stored `Put`.
pub fn put_meta<'a>(op: &Op<'a>) -> Option<(PutMeta, &'a [u8])> {
    match op {
        Op::Put {
            workspace,
            name,
            version,
            created_at,
            updated_at,
            labels,
            expires_at,
            value,
        } => Some((
            PutMeta {
                workspace: workspace.clone(),
                name: name.clone(),
                version: *version,
                created_at: *created_at,
                updated_at: *updated_at,
                labels: labels.clone(),
                expires_at: *expires_at,
            },
            value,
        )),
        Op::Delete { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locked::LockedBuf;
    use crate::storage::codec::{decode, encode_into};

    #[test]
    fn entries_round_trip_with_borrowed_values() {
        let meta = PutMeta {
            workspace: WorkspaceId::new("w").unwrap(),
            name: SecretName::new("k").unwrap(),
            version: 3,
            created_at: Timestamp::from_unix(1),
            updated_at: Timestamp::from_unix(2),
            labels: Labels::empty(),
            expires_at: None,
        };
        let value = [0u8, 255, 1, 2];
        let entry = JournalEntry {
            vault_id: [9; 16],
            generation: 4,
            seq: 5,
            op: Op::put(&meta, &value),
        };
        let mut buf = LockedBuf::new(0).unwrap();
        encode_into(&entry, &mut buf).unwrap();
        let back: JournalEntry<'_> = decode(buf.as_slice()).unwrap();
        assert_eq!((back.vault_id, back.generation, back.seq), ([9; 16], 4, 5));
        let (back_meta, back_value) = put_meta(&back.op).unwrap();
        assert_eq!(back_meta, meta);
        assert_eq!(back_value, &value);
    }

    #[test]
    fn garbage_is_invalid_data_not_a_panic() {
        for bytes in [&b""[..], b"\xff\xff\xff\xff\xff", &[0u8; 64]] {
            assert!(decode::<JournalEntry<'_>>(bytes).is_err());
        }
    }
}
