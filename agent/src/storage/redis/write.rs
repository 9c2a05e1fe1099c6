//! The writes of [`RedisBackend`]: STORE, ROTATE, DELETE and the purge of expired secrets.
//!
//! Each is a loop of read → decide → encrypt → compare-and-set (see `scripts`). The decision
//! is [`crate::rules::write`]'s, as for every backend; only where the state comes from
//! differs. A write is acknowledged only after the script has returned `ok` from
//! Redis, i.e. after Redis applied it (and, with `appendfsync always`, logged it to disk),
//! and — with `--redis-min-replicas N`, 1 by default with Sentinel — after `WAIT` saw N
//! replicas hold it (`Redis::write`).

use super::backend::RedisBackend;
use super::cache::Cached;
use super::keys::{self, WorkspaceKeys};
use super::record::{Meta, ValueHome, VersionRef};
use super::scripts::{self, Outcome, Position, Put};
use crate::rules::write::{self as rules, Head, Live};
use crate::storage::BackendError;
use avp_protocol::{
    ExpiryChange, Labels, RotateResult, SecretName, SecretValue, StoreResult, Timestamp,
    WorkspaceId,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Attempts before a write gives up under contention. Each failed attempt means another
/// writer succeeded, so this only runs out when one secret is written by many agents at
/// once without pause.
const MAX_ATTEMPTS: u32 = 100;
/// Expired secrets purged (at most) after each write.
const PURGE_PER_WRITE: usize = 16;
/// Without a current listing, one write in this many looks for expired secrets.
const PURGE_REFRESH_EVERY: u64 = 64;

fn contention() -> BackendError {
    BackendError::Unavailable(
        "this secret is being written by other agents without pause: try again".to_owned(),
    )
}

/// Waits a random, growing while before retrying after a conflict, so competing writers
/// spread out instead of colliding again in lockstep.
fn back_off(attempt: u32) {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    let ceiling_us = 100u64 << attempt.min(7);
    std::thread::sleep(Duration::from_micros(
        u64::from(u32::from_le_bytes(random)) % ceiling_us,
    ));
}

/// Whether a write's outcome changed Redis (now or in an earlier attempt), so replicas
/// must confirm it before it is acknowledged.
fn acked(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Applied(_) | Outcome::AlreadyApplied)
}

/// What the rules see of a live secret.
fn as_live(meta: &Meta) -> Live<'_> {
    Live {
        version: meta.current().number,
        created_at: meta.created_at,
        labels: &meta.labels,
        expires_at: meta.expires_at,
    }
}

impl RedisBackend {
    /// STORE (PROTOCOL.md §9.2): a new secret at version 1, or version old+1 keeping
    /// `created_at`, and labels and expiry unless changed.
    pub(super) fn store_version(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: &SecretValue,
        labels: Option<Labels>,
        expires_at: ExpiryChange,
        now: Timestamp,
    ) -> Result<StoreResult, BackendError> {
        let limits = self.settings.limits;
        // Refuse what no state could make acceptable before any round trip to Redis.
        rules::check_store(limits, value.len(), expires_at, now)?;
        let (head, _) = self.put_version(workspace, name, value, now, |meta| {
            let live = meta.map(as_live);
            Ok(rules::store(
                limits,
                live,
                value.len(),
                labels.clone(),
                expires_at,
                now,
            )?)
        })?;
        Ok(StoreResult {
            created: head.creates(),
            version: head.version,
            created_at: head.created_at,
            updated_at: now,
        })
    }

    /// ROTATE: a new version of a live secret, labels and expiry kept.
    pub(super) fn rotate_version(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: &SecretValue,
        now: Timestamp,
    ) -> Result<RotateResult, BackendError> {
        let limits = self.settings.limits;
        let (head, previous) = self.put_version(workspace, name, value, now, |meta| {
            let (head, _) = rules::rotate(limits, meta.map(as_live), value.len())?;
            Ok(head)
        })?;
        Ok(RotateResult {
            previous_version: previous.ok_or(BackendError::NotFound)?,
            new_version: head.version,
            updated_at: now,
        })
    }

    /// Writes one new version decided by `decide` from the live state (`None`: absent or
    /// expired). Returns the version written and the live version it replaced.
    fn put_version(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: &SecretValue,
        now: Timestamp,
        decide: impl Fn(Option<&Meta>) -> Result<Head, BackendError>,
    ) -> Result<(Head, Option<u32>), BackendError> {
        let (ws, secret) = self.keys(workspace, name);
        for attempt in 0..MAX_ATTEMPTS {
            let loaded = self.load(&ws, &secret, false)?;
            let live = loaded.as_ref().map(|l| &l.meta).filter(|m| !m.expired(now));
            let head = decide(live)?;
            let tag = keys::random_tag()?;
            let added = VersionRef {
                number: head.version,
                created_at: now,
                tag: tag.clone(),
            };
            // Appending keeps the newest `history` versions; an absent or expired secret
            // starts afresh and its old records go in the same script.
            let (versions, dropped, restart) = match live {
                Some(meta) => {
                    let mut versions = meta.versions.clone();
                    versions.push(added);
                    let excess = rules::excess(versions.len(), self.settings.history);
                    let dropped: Vec<String> = versions.drain(..excess).map(|v| v.tag).collect();
                    (versions, dropped, false)
                }
                None => (vec![added], Vec::new(), true),
            };
            let meta = Meta {
                workspace: workspace.clone(),
                name: name.clone(),
                created_at: head.created_at,
                labels: head.labels.clone(),
                expires_at: head.expires_at,
                versions,
            };
            let meta_record = self.sealer.seal_meta(&meta)?;
            let home = ValueHome {
                workspace,
                name,
                version: head.version,
                tag: &tag,
            };
            let value_record = self.sealer.seal_value(home, value.expose_secret())?;
            let put = Put {
                expected: loaded.as_ref().map(|l| l.current.as_str()),
                tag: &tag,
                value: &value_record,
                meta: &meta_record,
                restart,
                drop: &dropped,
                max_secrets: self.settings.limits.max_secrets_per_workspace,
            };
            let outcome = self
                .redis
                .write(|conn, _| scripts::put(conn, &ws, &secret, &put), acked)?;
            let generation = match outcome {
                Outcome::Applied(generation) => Some(generation),
                Outcome::AlreadyApplied => None,
                Outcome::Conflict => {
                    back_off(attempt);
                    continue;
                }
                Outcome::Full => {
                    if self.purge_expired(&ws, now, usize::MAX)? == 0 {
                        return Err(BackendError::CapacityExceeded);
                    }
                    continue;
                }
            };
            let previous = live.map(|m| m.current().number);
            let cached = Cached::new(&self.cache, secret.field.clone(), meta_record, &meta)?;
            self.known.note(&ws.tag, &cached, &tag, Some(&value_record));
            let position = generation.map(|generation| Position {
                generation,
                head: scripts::log_entry(generation, &secret.field, &tag),
            });
            self.note_write(&ws.tag, &secret.field, Some(cached), position);
            if let Some(generation) = generation {
                self.purge_after_write(&ws, generation, now);
            }
            return Ok((head, previous));
        }
        Err(contention())
    }

    /// Records a write this agent made (see [`super::cache::MetaCache::note_write`]), and the generation
    /// it took the workspace to.
    fn note_write(
        &self,
        workspace: &str,
        field: &str,
        written: Option<std::sync::Arc<Cached>>,
        position: Option<Position>,
    ) {
        if let Some(position) = &position {
            self.known.saw_generation(workspace, position.generation);
        }
        self.cache.note_write(workspace, field, written, position);
    }

    /// DELETE: every version goes; `false` when nothing live was there. An expired secret
    /// is purged on the way (and still answers `false`).
    pub(super) fn delete_secret(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let (ws, secret) = self.keys(workspace, name);
        for attempt in 0..MAX_ATTEMPTS {
            let Some(loaded) = self.load(&ws, &secret, false)? else {
                return Ok(false);
            };
            let was_live =
                rules::delete((!loaded.meta.expired(now)).then(|| as_live(&loaded.meta)));
            let outcome = self.redis.write(
                |conn, retry| scripts::delete(conn, &ws, &secret, &loaded.current, retry),
                acked,
            )?;
            let generation = match outcome {
                Outcome::Applied(generation) => Some(generation),
                Outcome::AlreadyApplied => None,
                Outcome::Conflict | Outcome::Full => {
                    back_off(attempt);
                    continue;
                }
            };
            let position = generation.map(|generation| Position {
                generation,
                head: scripts::log_entry(generation, &secret.field, &loaded.current),
            });
            self.known.forget(&ws.tag, &secret.field);
            self.note_write(&ws.tag, &secret.field, None, position);
            return Ok(was_live);
        }
        Err(contention())
    }

    /// Deletes `cached` if it is still exactly that state; true if it did.
    fn delete_if_unchanged(
        &self,
        ws: &WorkspaceKeys,
        cached: &Cached,
    ) -> Result<bool, BackendError> {
        let meta = &cached.meta()?;
        let secret = self.names.secret(&meta.workspace, &meta.name);
        let expected = &meta.current().tag;
        let outcome = self.redis.write(
            |conn, retry| scripts::delete(conn, ws, &secret, expected, retry),
            acked,
        )?;
        let generation = match outcome {
            Outcome::Applied(generation) => Some(generation),
            Outcome::AlreadyApplied => None,
            Outcome::Conflict | Outcome::Full => return Ok(false),
        };
        let position = generation.map(|generation| Position {
            generation,
            head: scripts::log_entry(generation, &secret.field, expected),
        });
        self.known.forget(&ws.tag, &secret.field);
        self.note_write(&ws.tag, &secret.field, None, position);
        Ok(true)
    }

    /// Purges up to `max` expired secrets of the workspace, from a current listing.
    /// Returns how many were removed.
    fn purge_expired(
        &self,
        ws: &WorkspaceKeys,
        now: Timestamp,
        max: usize,
    ) -> Result<usize, BackendError> {
        let expired = self.fresh(ws, |cache, generation| {
            cache.expired(&ws.tag, generation, now, max)
        })?;
        let mut purged = 0;
        for cached in &expired {
            if self.delete_if_unchanged(ws, cached)? {
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// After a write: purge a few expired secrets of the workspace. Best effort — the write
    /// itself is already acknowledged. Usually free: this agent's listing is current (our
    /// write advanced it) and is scanned in memory. When it is not (no LIST yet, or another
    /// agent wrote in between), one write in [`PURGE_REFRESH_EVERY`] takes a fresh snapshot
    /// to look, so expired records do not stay in Redis for ever.
    fn purge_after_write(&self, ws: &WorkspaceKeys, generation: u64, now: Timestamp) {
        let expired = match self
            .cache
            .expired(&ws.tag, generation, now, PURGE_PER_WRITE)
        {
            Some(expired) => expired,
            None if self
                .writes
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(PURGE_REFRESH_EVERY) =>
            {
                match self.fresh(ws, |cache, g| {
                    cache.expired(&ws.tag, g, now, PURGE_PER_WRITE)
                }) {
                    Ok(expired) => expired,
                    Err(err) => {
                        tracing::debug!(%err, "looking for expired secrets failed");
                        return;
                    }
                }
            }
            None => return,
        };
        for cached in &expired {
            if let Err(err) = self.delete_if_unchanged(ws, cached) {
                tracing::debug!(%err, "purging an expired secret failed; will retry later");
                return;
            }
        }
    }
}
