//! Decrypted metadata in locked memory. The metadata cache (`cache.rs`) holds the names,
//! labels and workspace ids of every secret it has seen for as long as the vault is
//! unlocked: like the values of the vault backend, they go into a [`LockedArena`] (never
//! swapped, left out of core dumps, wiped when freed) instead of ordinary heap.
//!
//! A [`LockedMeta`] is one record: its secret's name in one slot (so the listing can keep
//! name order by comparing bytes in place) and the whole [`Meta`], bincode-encoded, in
//! another. Reading one decodes a transient [`Meta`] on the heap, for the request at hand;
//! the agent's allocator wipes it when it is freed.
//!
//! Lock order: a cache lock, then the arena's. Dropping a [`LockedMeta`] takes the arena's
//! lock, so none is dropped while it is held.

use super::record::Meta;
use crate::locked::{LockedArena, Slot};
use crate::storage::BackendError;
use crate::sync::guard;
use std::cmp::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

/// The arena of one cache, shared by its records.
pub type SharedArena = Arc<Mutex<LockedArena>>;

fn unreadable() -> BackendError {
    BackendError::Encryption("cached metadata in locked memory is unreadable")
}

/// One decrypted metadata record, in locked memory; freed (wiped) on drop.
pub struct LockedMeta {
    arena: SharedArena,
    /// `None` only once dropped.
    slots: Option<(Slot, Slot)>,
}

impl std::fmt::Debug for LockedMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the name or labels.
        f.write_str("LockedMeta([REDACTED])")
    }
}

impl LockedMeta {
    /// Copies `meta` into `arena`.
    pub fn new(arena: &SharedArena, meta: &Meta) -> Result<Self, BackendError> {
        let encoded = zeroize::Zeroizing::new(
            bincode::serde::encode_to_vec(meta, bincode::config::standard())
                .map_err(|_| unreadable())?,
        );
        let mut locked = guard(arena);
        let name = locked
            .insert(meta.name.as_str().as_bytes())
            .map_err(|_| unreadable())?;
        let record = match locked.insert(&encoded) {
            Ok(record) => record,
            Err(_) => {
                locked.free(name);
                return Err(unreadable());
            }
        };
        Ok(Self {
            arena: Arc::clone(arena),
            slots: Some((name, record)),
        })
    }

    /// The arena's lock, for [`Self::name`] and [`Self::read`] over many records at once.
    pub fn lock(&self) -> MutexGuard<'_, LockedArena> {
        guard(&self.arena)
    }

    /// The secret's name, as bytes (name order is byte order), from the locked arena.
    pub fn name<'a>(&self, arena: &'a LockedArena) -> &'a [u8] {
        self.slots.as_ref().map_or(&[], |(name, _)| arena.get(name))
    }

    /// Compares this record's name with `other`.
    pub fn cmp_name(&self, arena: &LockedArena, other: &[u8]) -> Ordering {
        self.name(arena).cmp(other)
    }

    /// A transient copy of the metadata, from the locked arena.
    pub fn read(&self, arena: &LockedArena) -> Result<Meta, BackendError> {
        let (_, record) = self.slots.as_ref().ok_or_else(unreadable)?;
        let (meta, used) =
            bincode::serde::decode_from_slice(arena.get(record), bincode::config::standard())
                .map_err(|_| unreadable())?;
        if used != record.len() {
            return Err(unreadable());
        }
        Ok(meta)
    }

    /// [`Self::read`], taking the arena's lock for it.
    pub fn get(&self) -> Result<Meta, BackendError> {
        self.read(&self.lock())
    }
}

impl Drop for LockedMeta {
    fn drop(&mut self) {
        if let Some((name, record)) = self.slots.take() {
            let mut arena = guard(&self.arena);
            arena.free(name);
            arena.free(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::redis::record::VersionRef;
    use avp_protocol::{Labels, SecretName, Timestamp, WorkspaceId};

    #[test]
    fn metadata_round_trips_through_the_arena_and_is_freed_on_drop() {
        let arena = SharedArena::default();
        let meta = Meta {
            workspace: WorkspaceId::new("w-MARKER").unwrap(),
            name: SecretName::new("NAME_MARKER").unwrap(),
            created_at: Timestamp::from_unix(1),
            labels: Labels::empty(),
            expires_at: Some(Timestamp::from_unix(9)),
            versions: vec![VersionRef {
                number: 2,
                created_at: Timestamp::from_unix(3),
                tag: "ab".repeat(16),
            }],
        };
        let locked = LockedMeta::new(&arena, &meta).unwrap();
        assert_eq!(locked.get().unwrap(), meta);
        assert_eq!(locked.name(&locked.lock()), b"NAME_MARKER");
        assert_eq!(locked.cmp_name(&locked.lock(), b"A"), Ordering::Greater);
        assert!(guard(&arena).live_bytes() > 11);
        drop(locked);
        assert_eq!(guard(&arena).live_bytes(), 0, "wiped and freed");
    }
}
