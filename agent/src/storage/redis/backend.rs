//! [`RedisBackend`]: the unlocked vault served from Redis. This file holds the reads and
//! the plumbing they share with the writes (in `write.rs`): loading a secret's state,
//! decrypting metadata through the cache, refreshing a workspace listing.
//!
//! Every read goes to Redis: RETRIEVE is one script round trip and one value decryption
//! (the metadata decryption is memoised by exact ciphertext); LIST is one round trip asking
//! what changed since the cached listing (usually nothing, or a few records to decrypt).
//!
//! Only when Redis cannot be reached (`BACKEND_UNAVAILABLE`), and for at most
//! `--redis-stale-reads` after the last successful contact, RETRIEVE, HISTORY and LIST
//! answer from what this agent last read or wrote ([`LastKnown`], and the listing of the
//! metadata cache if it is at least as new as anything this agent saw of the workspace);
//! such answers are marked for the audit log ([`crate::storage::stale`]). A secret this
//! agent has no copy of answers `BACKEND_UNAVAILABLE`, never `SECRET_NOT_FOUND`.

use super::cache::{Cached, Changed, MetaCache, PageQuery};
use super::conn::Redis;
use super::keys::{self, KeyNames, SecretKeys, WorkspaceKeys};
use super::last_known::LastKnown;
use super::record::{Meta, Sealer, ValueHome};
use super::scripts::{self, Changes, Records};
use crate::storage::{Backend, BackendError, BackendSettings, Counts, stale};
use avp_protocol::{
    ExpiryChange, HistoryResult, Labels, ListPage, RotateResult, Secret, SecretName, SecretValue,
    StoreResult, Timestamp, VersionInfo, WorkspaceId,
};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

/// Below this many records a snapshot is decrypted on the calling thread.
const PARALLEL_MIN: usize = 256;
/// Most threads used to decrypt one snapshot.
const MAX_DECRYPT_THREADS: usize = 4;

/// The Redis backend, unlocked. Dropping it wipes the private key, the naming key and the
/// decrypted metadata.
#[derive(Debug)]
pub struct RedisBackend {
    pub(super) redis: Arc<Redis>,
    pub(super) sealer: Sealer,
    pub(super) names: KeyNames,
    pub(super) settings: BackendSettings,
    pub(super) cache: MetaCache,
    /// What was last read or written of each secret, for reads while Redis is away.
    pub(super) known: LastKnown,
    /// Writes made, to pace the search for expired secrets (see `write.rs`).
    pub(super) writes: AtomicU64,
}

/// A secret's state as just read from Redis.
#[derive(Debug)]
pub(super) struct Loaded {
    /// The current version's tag: what a compare-and-set expects.
    pub current: String,
    /// The decrypted metadata: a transient copy, for this request only (the cache keeps it
    /// in locked memory).
    pub meta: Meta,
    /// The current value record, when asked for.
    pub value: Option<Vec<u8>>,
    /// The metadata as cached (in locked memory).
    pub cached: Arc<Cached>,
}

/// `err` (Redis unreachable), saying that no last-known copy can stand in.
fn no_copy(err: BackendError) -> BackendError {
    match err {
        BackendError::Unavailable(why) => BackendError::Unavailable(format!(
            "{why} (this agent has no recent copy of that to answer from meanwhile)"
        )),
        other => other,
    }
}

fn inconsistent() -> BackendError {
    BackendError::Integrity(
        "a secret in Redis is inconsistent (its records disagree): restore Redis from a backup",
    )
}

impl RedisBackend {
    /// Serves the vault whose unwrapped identity this is.
    pub fn new(
        redis: Arc<Redis>,
        identity: Box<age::x25519::Identity>,
        settings: BackendSettings,
    ) -> Result<Self, BackendError> {
        let names = KeyNames::derive(&identity)?;
        let most = 2 * settings.limits.max_secrets_per_workspace as usize;
        let cache = MetaCache::new(most);
        Ok(Self {
            redis,
            sealer: Sealer::new(&identity)?,
            names,
            known: LastKnown::new(cache.arena(), most),
            cache,
            settings,
            writes: AtomicU64::new(0),
        })
    }

    pub(super) fn keys(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
    ) -> (WorkspaceKeys, SecretKeys) {
        (
            self.names.workspace(workspace),
            self.names.secret(workspace, name),
        )
    }

    /// Decrypts a metadata record, or reuses the decryption of identical bytes.
    fn open_meta(
        &self,
        workspace: &str,
        field: &str,
        ciphertext: Vec<u8>,
    ) -> Result<Arc<Cached>, BackendError> {
        if let Some(cached) = self.cache.memo(workspace, field, &ciphertext) {
            return Ok(cached);
        }
        let known = OnceLock::new();
        let meta = self.sealer.open_meta(&ciphertext, |meta| {
            self.names
                .is_home(&meta.workspace, &meta.name, workspace, field, &known)
        })?;
        let cached = Cached::new(&self.cache, field.to_owned(), ciphertext, &meta)?;
        self.cache.remember(workspace, Arc::clone(&cached));
        Ok(cached)
    }

    /// A secret's current tag and metadata (and current value record if `with_value`), read
    /// at one instant; `None` if it does not exist (expired ones are returned).
    pub(super) fn load(
        &self,
        ws: &WorkspaceKeys,
        secret: &SecretKeys,
        with_value: bool,
    ) -> Result<Option<Loaded>, BackendError> {
        let Some(stored) = self
            .redis
            .run(|conn, _| scripts::read(conn, ws, secret, with_value))?
        else {
            return Ok(None);
        };
        let ciphertext = stored.meta.ok_or_else(inconsistent)?;
        let cached = self.open_meta(&ws.tag, &secret.field, ciphertext)?;
        let meta = cached.meta()?;
        if meta.current().tag != stored.current {
            return Err(inconsistent());
        }
        Ok(Some(Loaded {
            current: stored.current,
            meta,
            value: stored.value,
            cached,
        }))
    }

    /// [`Self::load`] for a read: remembers what it found (see [`LastKnown`]).
    fn load_for_read(
        &self,
        ws: &WorkspaceKeys,
        secret: &SecretKeys,
        with_value: bool,
    ) -> Result<Option<Loaded>, BackendError> {
        let loaded = self.load(ws, secret, with_value)?;
        match &loaded {
            Some(l) => {
                let value = l.value.as_deref().filter(|_| with_value);
                self.known.note(&ws.tag, &l.cached, &l.current, value);
            }
            None => self.known.forget(&ws.tag, &secret.field),
        }
        Ok(loaded)
    }

    /// What this agent last knew of a secret, if Redis is unreachable (`err`) and reads
    /// may still be answered from it; else `err`.
    fn last_known(
        &self,
        ws: &WorkspaceKeys,
        secret: &SecretKeys,
        err: BackendError,
    ) -> Result<(Meta, Option<Vec<u8>>), BackendError> {
        if !matches!(err, BackendError::Unavailable(_)) || !self.redis.stale_reads_allowed() {
            return Err(err);
        }
        let Some(known) = self.known.get(&ws.tag, &secret.field) else {
            return Err(no_copy(err));
        };
        Ok((known.meta.meta()?, known.value))
    }

    /// Runs `read` on a listing of the workspace that is current: this agent's, brought up
    /// to date with what changed since (one round trip), or a new one.
    pub(super) fn fresh<R>(
        &self,
        ws: &WorkspaceKeys,
        read: impl Fn(&MetaCache, u64) -> Option<R>,
    ) -> Result<R, BackendError> {
        let mut since = self.cache.listing_position(&ws.tag);
        // Twice at most: if a delta cannot be applied (the listing changed meanwhile in a
        // way it does not fit), the second round asks for everything.
        for _ in 0..2 {
            let (position, changes) = self
                .redis
                .run(|conn, _| scripts::sync(conn, ws, since.as_ref()))?;
            let generation = position.generation;
            self.known.saw_generation(&ws.tag, generation);
            let current = match changes {
                Changes::Same => true,
                Changes::Delta(changed) => {
                    let changed = self.open_changes(&ws.tag, changed)?;
                    match &since {
                        Some(from) => self.cache.apply_changes(&ws.tag, from, position, changed),
                        None => false,
                    }
                }
                Changes::Full(records) => {
                    let (mut entries, fresh) = self.cache.reuse(&ws.tag, records);
                    entries.extend(self.open_many(&ws.tag, fresh)?);
                    self.cache.install(&ws.tag, position, entries);
                    true
                }
            };
            if current && let Some(result) = read(&self.cache, generation) {
                return Ok(result);
            }
            since = None;
        }
        Err(inconsistent())
    }

    /// Decrypts the records of a delta (reusing memoised ones); deletions stay `None`.
    fn open_changes(
        &self,
        workspace: &str,
        changed: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<Changed, BackendError> {
        changed
            .into_iter()
            .map(|(field, record)| {
                let cached = match record {
                    Some(record) => Some(self.open_meta(workspace, &field, record)?),
                    None => None,
                };
                Ok((field, cached))
            })
            .collect()
    }

    /// Decrypts many metadata records, spread over a few threads when there are many (a
    /// cold listing of 10,000 secrets is 10,000 X25519 operations).
    fn open_many(
        &self,
        workspace: &str,
        records: Records,
    ) -> Result<Vec<Arc<Cached>>, BackendError> {
        let known = OnceLock::new();
        let open = |(field, ciphertext): (String, Vec<u8>)| {
            let meta = self.sealer.open_meta(&ciphertext, |meta| {
                self.names
                    .is_home(&meta.workspace, &meta.name, workspace, &field, &known)
            })?;
            Cached::new(&self.cache, field, ciphertext, &meta)
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_DECRYPT_THREADS);
        if records.len() < PARALLEL_MIN || threads < 2 {
            return records.into_iter().map(open).collect();
        }
        let per_thread = records.len().div_ceil(threads);
        let mut records = records.into_iter();
        let chunks: Vec<Vec<_>> = (0..threads)
            .map(|_| records.by_ref().take(per_thread).collect())
            .collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .into_iter()
                            .map(open)
                            .collect::<Result<Vec<_>, BackendError>>()
                    })
                })
                .collect();
            let mut all = Vec::new();
            for worker in workers {
                let part = worker
                    .join()
                    .unwrap_or(Err(BackendError::Encryption("a decryption thread failed")))?;
                all.extend(part);
            }
            Ok(all)
        })
    }
}

impl RedisBackend {
    /// RETRIEVE from what this agent last read or wrote, while Redis is unreachable
    /// (`err`): only the current version, whose value record it kept.
    fn retrieve_stale(
        &self,
        ws: &WorkspaceKeys,
        secret: &SecretKeys,
        (workspace, name): (&WorkspaceId, &SecretName),
        version: Option<u32>,
        now: Timestamp,
        err: BackendError,
    ) -> Result<Secret, BackendError> {
        let unavailable = match &err {
            BackendError::Unavailable(why) => BackendError::Unavailable(why.clone()),
            _ => return Err(err),
        };
        let (meta, record) = self.last_known(ws, secret, err)?;
        if meta.expired(now) {
            return Err(BackendError::NotFound);
        }
        let current = meta.current();
        let record = match (version, record) {
            (None, Some(record)) => record,
            (Some(n), Some(record)) if n == current.number => record,
            _ => return Err(no_copy(unavailable)),
        };
        let value = self.sealer.open_value(
            &record,
            ValueHome {
                workspace,
                name,
                version: current.number,
                tag: &current.tag,
            },
        )?;
        stale::mark();
        Ok(Secret {
            name: name.clone(),
            value,
            version: current.number,
            labels: meta.labels.clone(),
            created_at: meta.created_at,
            updated_at: current.created_at,
            expires_at: meta.expires_at,
        })
    }
}

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn store(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        labels: Option<Labels>,
        expires_at: ExpiryChange,
        now: Timestamp,
    ) -> Result<StoreResult, BackendError> {
        self.store_version(workspace, name, &value, labels, expires_at, now)
    }

    fn retrieve(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        version: Option<u32>,
        now: Timestamp,
    ) -> Result<Secret, BackendError> {
        let (ws, secret) = self.keys(workspace, name);
        let loaded = match self.load_for_read(&ws, &secret, true) {
            Ok(loaded) => loaded.ok_or(BackendError::NotFound)?,
            Err(err) => {
                return self.retrieve_stale(&ws, &secret, (workspace, name), version, now, err);
            }
        };
        let meta = &loaded.meta;
        if meta.expired(now) {
            return Err(BackendError::NotFound);
        }
        let current = meta.current();
        let (found, ciphertext) = match version {
            None => (current, loaded.value.ok_or_else(inconsistent)?),
            Some(n) if n == current.number => (current, loaded.value.ok_or_else(inconsistent)?),
            Some(n) => {
                let old = meta
                    .versions
                    .iter()
                    .find(|v| v.number == n)
                    .ok_or(BackendError::NotFound)?;
                // Gone if a write trimmed it since the state was read: not found, as if the
                // RETRIEVE had come after that write.
                let record = self
                    .redis
                    .run(|conn, _| scripts::read_version(conn, &secret, &old.tag))?
                    .ok_or(BackendError::NotFound)?;
                (old, record)
            }
        };
        let value = self.sealer.open_value(
            &ciphertext,
            ValueHome {
                workspace,
                name,
                version: found.number,
                tag: &found.tag,
            },
        )?;
        Ok(Secret {
            name: name.clone(),
            value,
            version: found.number,
            labels: meta.labels.clone(),
            created_at: meta.created_at,
            updated_at: current.created_at,
            expires_at: meta.expires_at,
        })
    }

    fn delete(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        self.delete_secret(workspace, name, now)
    }

    fn list(
        &self,
        workspace: &WorkspaceId,
        label_filter: &Labels,
        after: Option<&SecretName>,
        limit: usize,
        now: Timestamp,
    ) -> Result<ListPage, BackendError> {
        let ws = self.names.workspace(workspace);
        let query = PageQuery {
            filter: label_filter,
            after,
            limit,
            now,
        };
        match self.fresh(&ws, |cache, generation| {
            cache.page(&ws.tag, generation, &query)
        }) {
            Ok(page) => page,
            Err(err @ BackendError::Unavailable(_)) if self.redis.stale_reads_allowed() => {
                // The listing, if it is at least as new as all this agent saw there.
                let seen = self.known.generation(&ws.tag);
                let page = self
                    .cache
                    .page(&ws.tag, seen, &query)
                    .ok_or_else(|| no_copy(err))??;
                stale::mark();
                Ok(page)
            }
            Err(err) => Err(err),
        }
    }

    fn rotate(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        now: Timestamp,
    ) -> Result<RotateResult, BackendError> {
        self.rotate_version(workspace, name, &value, now)
    }

    fn history(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<HistoryResult, BackendError> {
        let (ws, secret) = self.keys(workspace, name);
        let meta = match self.load_for_read(&ws, &secret, false) {
            Ok(loaded) => loaded.ok_or(BackendError::NotFound)?.meta,
            Err(err) => {
                let (meta, _) = self.last_known(&ws, &secret, err)?;
                stale::mark();
                meta
            }
        };
        if meta.expired(now) {
            return Err(BackendError::NotFound);
        }
        Ok(HistoryResult {
            name: name.clone(),
            versions: meta
                .versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.number,
                    created_at: v.created_at,
                })
                .collect(),
        })
    }

    fn counts(&self, now: Timestamp) -> Counts {
        let mut counts = Counts::default();
        let tags = match self.redis.run(|conn, _| scripts::workspaces(conn)) {
            Ok(tags) => tags,
            Err(err) => {
                tracing::warn!(%err, "cannot count secrets in Redis");
                return counts;
            }
        };
        for ws in tags.iter().filter_map(|tag| keys::workspace_from_tag(tag)) {
            match self.fresh(&ws, |cache, generation| {
                cache.live_count(&ws.tag, generation, now)
            }) {
                Ok(0) => {}
                Ok(live) => {
                    counts.workspaces += 1;
                    counts.secrets += live;
                }
                Err(err) => tracing::warn!(%err, "cannot count the secrets of a workspace"),
            }
        }
        counts
    }

    fn workspaces(&self, now: Timestamp) -> Result<Vec<(WorkspaceId, u64)>, BackendError> {
        let tags = self.redis.run(|conn, _| scripts::workspaces(conn))?;
        let mut counts = Vec::new();
        for ws in tags.iter().filter_map(|tag| keys::workspace_from_tag(tag)) {
            let (live, sample) = self.fresh(&ws, |cache, generation| {
                cache.live_sample(&ws.tag, generation, now)
            })?;
            // Redis holds only the workspace's tag: its id comes from a decrypted record.
            if let Some(sample) = sample {
                counts.push((sample.meta()?.workspace, live));
            }
        }
        counts.sort_unstable();
        Ok(counts)
    }
}
