//! What this agent last read or wrote of each secret, so an unlocked agent can keep
//! answering RETRIEVE and HISTORY while Redis is unreachable (LIST uses the metadata
//! cache's listing, see `backend.rs`).
//!
//! Per secret: its decrypted metadata (the cache's [`Cached`], in locked memory) and the
//! current version's value *record* — the age ciphertext exactly as Redis holds it, copied
//! into the same locked arena, so no plaintext value is kept at all: a stale RETRIEVE
//! decrypts it again. Everything is dropped with the backend when the vault locks.
//!
//! Never older than what this agent acknowledged or read: every successful read and every
//! acknowledged write replaces the entry, a delete removes it, and an entry is only
//! replaced by an older version of the same secret if that secret was recreated (another
//! `created_at`). A read that learns of a newer current version without its value (HISTORY)
//! drops the kept value, so a stale RETRIEVE answers `BACKEND_UNAVAILABLE` rather than an
//! older value.

use super::cache::Cached;
use super::locked_meta::SharedArena;
use crate::locked::Slot;
use crate::storage::BackendError;
use crate::sync::guard;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bytes in the locked arena; wiped and freed on drop.
struct LockedBytes {
    arena: SharedArena,
    slot: Option<Slot>,
}

impl LockedBytes {
    fn new(arena: &SharedArena, bytes: &[u8]) -> Result<Self, BackendError> {
        let slot = guard(arena).insert(bytes).map_err(|_| {
            BackendError::Encryption("cannot keep a copy of a record in locked memory")
        })?;
        Ok(Self {
            arena: Arc::clone(arena),
            slot: Some(slot),
        })
    }

    fn to_vec(&self) -> Vec<u8> {
        self.slot
            .as_ref()
            .map_or_else(Vec::new, |slot| guard(&self.arena).get(slot).to_vec())
    }
}

impl Drop for LockedBytes {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            guard(&self.arena).free(slot);
        }
    }
}

/// One secret as last seen.
struct Kept {
    meta: Arc<Cached>,
    /// The current version's tag and value record, when known.
    value: Option<(String, LockedBytes)>,
}

/// A kept secret, handed out for a stale read.
#[derive(Debug)]
pub struct Known {
    /// Its metadata.
    pub meta: Arc<Cached>,
    /// The current value record, if this agent has it.
    pub value: Option<Vec<u8>>,
}

/// Workspace tag, secret field.
type Key = (String, String);

/// The last-known state of the secrets this agent touched.
pub struct LastKnown {
    arena: SharedArena,
    secrets: Mutex<HashMap<Key, Kept>>,
    /// The newest generation this agent has seen of each workspace: a listing older than
    /// it may not be served stale.
    generations: Mutex<HashMap<String, u64>>,
    /// Most secrets kept (past it the store starts afresh; stale reads are best effort).
    limit: usize,
}

impl std::fmt::Debug for LastKnown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastKnown")
            .field("secrets", &guard(&self.secrets).len())
            .finish_non_exhaustive()
    }
}

impl LastKnown {
    /// An empty store whose value records go into `arena`.
    pub fn new(arena: SharedArena, limit: usize) -> Self {
        Self {
            arena,
            secrets: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            limit: limit.max(16),
        }
    }

    /// Records the state just read or written: `meta` is current with tag `current`;
    /// `value` is the current value record when it was read or written (`None`: only the
    /// metadata was). Never fails the read or write it follows: if the copy cannot be
    /// kept (locked memory exhausted…), the secret's entry is dropped instead, so no older
    /// copy stays behind.
    pub fn note(&self, workspace: &str, meta: &Arc<Cached>, current: &str, value: Option<&[u8]>) {
        if let Err(err) = self.try_note(workspace, meta, current, value) {
            tracing::debug!(%err, "cannot keep a last-known copy of a secret");
            self.forget(workspace, &meta.field);
        }
    }

    fn try_note(
        &self,
        workspace: &str,
        meta: &Arc<Cached>,
        current: &str,
        value: Option<&[u8]>,
    ) -> Result<(), BackendError> {
        let value = value
            .map(|record| LockedBytes::new(&self.arena, record))
            .transpose()?;
        let new_meta = meta.meta()?;
        let mut secrets = guard(&self.secrets);
        let key = (workspace.to_owned(), meta.field.clone());
        if let Some(kept) = secrets.get(&key) {
            let old = kept.meta.meta()?;
            let older = old.created_at == new_meta.created_at
                && old.current().number > new_meta.current().number;
            if older {
                // A read that raced a newer write of this agent: keep the newer.
                return Ok(());
            }
        }
        let value = match value {
            Some(record) => Some((current.to_owned(), record)),
            // Keep the value only if it is still the current version's.
            None => secrets
                .remove(&key)
                .and_then(|kept| kept.value)
                .filter(|(tag, _)| tag == current),
        };
        if secrets.len() >= self.limit && !secrets.contains_key(&key) {
            secrets.clear();
        }
        secrets.insert(
            key,
            Kept {
                meta: Arc::clone(meta),
                value,
            },
        );
        Ok(())
    }

    /// The secret in `field` is gone (deleted, or read as absent).
    pub fn forget(&self, workspace: &str, field: &str) {
        let removed = guard(&self.secrets).remove(&(workspace.to_owned(), field.to_owned()));
        drop(removed);
    }

    /// What is kept of a secret.
    pub fn get(&self, workspace: &str, field: &str) -> Option<Known> {
        let secrets = guard(&self.secrets);
        let kept = secrets.get(&(workspace.to_owned(), field.to_owned()))?;
        Some(Known {
            meta: Arc::clone(&kept.meta),
            value: kept.value.as_ref().map(|(_, record)| record.to_vec()),
        })
    }

    /// This agent saw `workspace` at `generation`.
    pub fn saw_generation(&self, workspace: &str, generation: u64) {
        let mut generations = guard(&self.generations);
        let seen = generations.entry(workspace.to_owned()).or_default();
        *seen = (*seen).max(generation);
    }

    /// The newest generation seen of `workspace` (0 if none).
    pub fn generation(&self, workspace: &str) -> u64 {
        guard(&self.generations)
            .get(workspace)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::redis::cache::MetaCache;
    use crate::storage::redis::record::{Meta, VersionRef};
    use avp_protocol::{Labels, SecretName, Timestamp, WorkspaceId};

    /// Metadata of secret `k` at `version` (tags `t1`, `t2`…), created at `created`.
    fn cached(cache: &MetaCache, version: u32, created: i64) -> Arc<Cached> {
        let meta = Meta {
            workspace: WorkspaceId::new("w").unwrap(),
            name: SecretName::new("k").unwrap(),
            created_at: Timestamp::from_unix(created),
            labels: Labels::empty(),
            expires_at: None,
            versions: (1..=version)
                .map(|n| VersionRef {
                    number: n,
                    created_at: Timestamp::from_unix(created),
                    tag: format!("t{n}"),
                })
                .collect(),
        };
        Cached::new(
            cache,
            "F".into(),
            format!("meta {version}").into_bytes(),
            &meta,
        )
        .unwrap()
    }

    fn kept(known: &LastKnown) -> (u32, Option<Vec<u8>>) {
        let k = known.get("W", "F").expect("kept");
        (k.meta.meta().unwrap().current().number, k.value)
    }

    #[test]
    fn a_kept_copy_is_never_replaced_by_an_older_one() {
        let cache = MetaCache::new(16);
        let known = LastKnown::new(cache.arena(), 16);
        known.note("W", &cached(&cache, 2, 100), "t2", Some(b"v2"));
        // A read that raced this agent's write and returned the version before it.
        known.note("W", &cached(&cache, 1, 100), "t1", Some(b"v1"));
        assert_eq!(kept(&known), (2, Some(b"v2".to_vec())));
        // The secret was deleted and created again: version 1 of it is newer.
        known.note("W", &cached(&cache, 1, 200), "t1", Some(b"new"));
        assert_eq!(kept(&known), (1, Some(b"new".to_vec())));
    }

    #[test]
    fn metadata_of_a_newer_version_drops_the_older_value() {
        let cache = MetaCache::new(16);
        let known = LastKnown::new(cache.arena(), 16);
        known.note("W", &cached(&cache, 1, 100), "t1", Some(b"v1"));
        // HISTORY of the same version keeps the value…
        known.note("W", &cached(&cache, 1, 100), "t1", None);
        assert_eq!(kept(&known), (1, Some(b"v1".to_vec())));
        // …of a newer one drops it: only metadata of version 2 is known.
        known.note("W", &cached(&cache, 2, 100), "t2", None);
        assert_eq!(kept(&known), (2, None));
        known.forget("W", "F");
        assert!(known.get("W", "F").is_none());
        assert_eq!(
            guard(&cache.arena()).live_bytes(),
            0,
            "every copy wiped and freed"
        );
    }
}
