//! Decrypted metadata, kept so LIST does not decrypt every record on every page (one age
//! decryption is an X25519 operation, ~40 µs; 10,000 secrets would be 0.4 s a page).
//!
//! Never stale: a workspace's *listing* is a complete copy of its metadata as of one
//! [`Position`] in its history (a generation of the workspace counter, which every write
//! bumps in the same script that makes the write, and that write's log entry). Every LIST
//! first asks Redis what changed since the listing's position (`scripts::sync`, one round
//! trip): nothing; the records of the few secrets written since, which are decrypted and
//! applied; or — when the listing is too far behind or from another history — everything,
//! of which only records whose ciphertext changed are decrypted. A write made by this agent
//! is applied to the listing directly when the listing was exactly one generation behind.
//!
//! The *memo* (per secret: the last ciphertext seen and its decryption) serves RETRIEVE and
//! writes: a record is reused only when the bytes just read from Redis are identical.
//!
//! Holds names, labels and workspace ids, never values — in locked memory
//! ([`LockedMeta`]): the listing keeps name order by comparing names in place there. The
//! lock is never held across I/O or decryption. Dropped with the backend when the vault
//! locks, which wipes it.

use super::locked_meta::{LockedMeta, SharedArena};
use super::record::Meta;
use super::scripts::{Position, Records};
use crate::locked::LockedArena;
use crate::storage::BackendError;
use crate::sync::guard;
use avp_protocol::{Labels, ListPage, SecretName, Timestamp};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The latest state of secrets written since a position: (field, metadata; `None` when
/// deleted).
pub type Changed = Vec<(String, Option<Arc<Cached>>)>;

/// A decrypted metadata record and the exact ciphertext it came from.
#[derive(Debug)]
pub struct Cached {
    /// `S`: the secret's field in the workspace hash.
    pub field: String,
    /// The ciphertext as stored.
    pub ciphertext: Vec<u8>,
    /// Its expiry (a time, not secret), for the listing's expiry index without a decode.
    pub expires_at: Option<Timestamp>,
    /// Its decryption, in locked memory.
    meta: LockedMeta,
}

impl Cached {
    /// A record of `cache` whose decryption is `meta`, copied into the cache's locked
    /// arena (the one its listings read names from).
    pub fn new(
        cache: &MetaCache,
        field: String,
        ciphertext: Vec<u8>,
        meta: &Meta,
    ) -> Result<Arc<Self>, BackendError> {
        Ok(Arc::new(Self {
            field,
            ciphertext,
            expires_at: meta.expires_at,
            meta: LockedMeta::new(&cache.arena, meta)?,
        }))
    }

    /// A transient copy of the decrypted metadata.
    pub fn meta(&self) -> Result<Meta, BackendError> {
        self.meta.get()
    }

    fn expired(&self, now: Timestamp) -> bool {
        crate::rules::is_expired(self.expires_at, now)
    }
}

#[derive(Debug)]
struct Listing {
    position: Position,
    /// Every entry, in name order (names compared in the locked arena).
    by_name: Vec<Arc<Cached>>,
    /// The same entries by field, to apply deletions (which name only the field).
    by_field: HashMap<String, Arc<Cached>>,
    /// The entries that expire, by expiry: finding the expired ones after each write costs
    /// a range lookup, not a scan of the workspace.
    expiring: BTreeSet<(Timestamp, String)>,
}

impl Listing {
    fn new(arena: &SharedArena, position: Position, entries: Vec<Arc<Cached>>) -> Self {
        // Entries replaced by a later one of the same name (as repeated `put`s would; a
        // checked snapshot has none, a field being a MAC of the name), dropped only after
        // the arena's lock is released: dropping one takes it.
        let mut replaced = Vec::new();
        let mut by_name: Vec<Arc<Cached>> = Vec::with_capacity(entries.len());
        {
            let locked = guard(arena);
            let mut entries = entries;
            // Stable: of equal names, the later entry stays later.
            entries.sort_by(|a, b| a.meta.name(&locked).cmp(b.meta.name(&locked)));
            for cached in entries {
                match by_name.last_mut() {
                    Some(last) if last.meta.name(&locked) == cached.meta.name(&locked) => {
                        replaced.push(std::mem::replace(last, cached));
                    }
                    _ => by_name.push(cached),
                }
            }
        }
        drop(replaced);
        let mut listing = Self {
            position,
            by_name: Vec::new(),
            by_field: HashMap::with_capacity(by_name.len()),
            expiring: BTreeSet::new(),
        };
        for cached in &by_name {
            listing.index(cached);
        }
        listing.by_name = by_name;
        listing
    }

    fn index(&mut self, cached: &Arc<Cached>) {
        if let Some(at) = cached.expires_at {
            self.expiring.insert((at, cached.field.clone()));
        }
        self.by_field
            .insert(cached.field.clone(), Arc::clone(cached));
    }

    /// Where `name` is, or would go, in `by_name`.
    fn search(&self, arena: &LockedArena, name: &[u8]) -> Result<usize, usize> {
        self.by_name
            .binary_search_by(|c| c.meta.cmp_name(arena, name))
    }

    /// Sets (or with `None` removes) the secret in `field`.
    fn put(&mut self, arena: &SharedArena, field: &str, cached: Option<Arc<Cached>>) {
        let mut removed = None;
        if let Some(old) = self.by_field.remove(field) {
            let at = {
                let locked = guard(arena);
                self.search(&locked, old.meta.name(&locked))
            };
            if let Ok(at) = at {
                removed = Some(self.by_name.remove(at));
            }
            if let Some(at) = old.expires_at {
                self.expiring.remove(&(at, field.to_owned()));
            }
        }
        if let Some(cached) = cached {
            self.index(&cached);
            let at = {
                let locked = guard(arena);
                self.search(&locked, cached.meta.name(&locked))
            };
            match at {
                // Another field under the same name (not from a checked snapshot): replace.
                Ok(at) => removed = Some(std::mem::replace(&mut self.by_name[at], cached)),
                Err(at) => self.by_name.insert(at, cached),
            }
        }
        drop(removed);
    }

    /// Up to `max` entries expired at `now`.
    fn expired(&self, now: Timestamp, max: usize) -> Vec<Arc<Cached>> {
        // `expired` means `expires_at <= now`; (now + 1, "") sorts after every (now, field).
        let end = (
            Timestamp::from_unix(now.unix().saturating_add(1)),
            String::new(),
        );
        self.expiring
            .range(..end)
            .filter_map(|(_, field)| self.by_field.get(field).cloned())
            .take(max)
            .collect()
    }
}

#[derive(Debug, Default)]
struct WorkspaceCache {
    memo: HashMap<String, Arc<Cached>>,
    listing: Option<Listing>,
}

/// The cache of every workspace this agent has touched, keyed by workspace tag.
pub struct MetaCache {
    workspaces: Mutex<HashMap<String, WorkspaceCache>>,
    /// Where every record's decryption lives; locked after `workspaces` (see
    /// `locked_meta`).
    arena: SharedArena,
    /// Memo entries kept per workspace beyond its listing (a bound for workspaces that are
    /// written and read but never listed).
    memo_limit: usize,
}

impl std::fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the names or labels it holds.
        f.debug_struct("MetaCache")
            .field("workspaces", &guard(&self.workspaces).len())
            .finish_non_exhaustive()
    }
}

impl MetaCache {
    /// An empty cache; `memo_limit` bounds the memo of a workspace.
    pub fn new(memo_limit: usize) -> Self {
        Self {
            workspaces: Mutex::new(HashMap::new()),
            arena: SharedArena::default(),
            memo_limit: memo_limit.max(16),
        }
    }

    /// The locked arena the records live in.
    pub fn arena(&self) -> SharedArena {
        std::sync::Arc::clone(&self.arena)
    }

    /// The memoised decryption of `ciphertext`, if it is exactly what was seen last.
    pub fn memo(&self, workspace: &str, field: &str, ciphertext: &[u8]) -> Option<Arc<Cached>> {
        let all = guard(&self.workspaces);
        let cached = all.get(workspace)?.memo.get(field)?;
        (cached.ciphertext == ciphertext).then(|| Arc::clone(cached))
    }

    /// Remembers a decryption (from a read or our own write).
    pub fn remember(&self, workspace: &str, cached: Arc<Cached>) {
        let mut all = guard(&self.workspaces);
        let entry = all.entry(workspace.to_owned()).or_default();
        if entry.memo.len() >= self.memo_limit && !entry.memo.contains_key(&cached.field) {
            // Rebuilt from the next snapshot; correctness never depends on the memo.
            entry.memo.clear();
        }
        entry.memo.insert(cached.field.clone(), cached);
    }

    /// Records a write this agent made to the secret in `field`, which took the workspace
    /// to `position` (`None` if unknown): `written` is the new metadata, `None` a delete.
    pub fn note_write(
        &self,
        workspace: &str,
        field: &str,
        written: Option<Arc<Cached>>,
        position: Option<Position>,
    ) {
        let mut all = guard(&self.workspaces);
        let entry = all.entry(workspace.to_owned()).or_default();
        match &written {
            Some(cached) => entry.memo.insert(field.to_owned(), Arc::clone(cached)),
            None => entry.memo.remove(field),
        };
        let Some(listing) = entry.listing.as_mut() else {
            return;
        };
        let Some(position) = position else {
            return;
        };
        if listing.position.generation.checked_add(1) != Some(position.generation) {
            // Someone else wrote in between: the next LIST catches up.
            return;
        }
        listing.put(&self.arena, field, written);
        listing.position = position;
    }

    /// Applies what changed between the listing's position `since` and `to`: `changed`
    /// holds the latest state of every secret written in between (`None`: deleted). True
    /// if the listing is now at `to` or later.
    pub fn apply_changes(
        &self,
        workspace: &str,
        since: &Position,
        to: Position,
        changed: Changed,
    ) -> bool {
        let mut all = guard(&self.workspaces);
        let entry = all.entry(workspace.to_owned()).or_default();
        let Some(listing) = entry.listing.as_mut() else {
            return false;
        };
        let at = listing.position.generation;
        if at > to.generation {
            return true;
        }
        // Between `since` and `to`, only the secrets in `changed` were written, so their
        // latest state brings any listing in that range to `to`.
        if at < since.generation {
            return false;
        }
        for (field, cached) in changed {
            if let Some(cached) = &cached {
                entry.memo.insert(field.clone(), Arc::clone(cached));
            } else {
                entry.memo.remove(&field);
            }
            listing.put(&self.arena, &field, cached);
        }
        listing.position = to;
        true
    }

    /// Memoised entries for a snapshot: reuses those whose ciphertext is unchanged and
    /// returns the rest (field, ciphertext) for decryption.
    pub fn reuse(&self, workspace: &str, snapshot: Records) -> (Vec<Arc<Cached>>, Records) {
        let all = guard(&self.workspaces);
        let memo = all.get(workspace).map(|w| &w.memo);
        let mut reused = Vec::with_capacity(snapshot.len());
        let mut fresh = Vec::new();
        for (field, ciphertext) in snapshot {
            match memo.and_then(|m| m.get(&field)) {
                Some(cached) if cached.ciphertext == ciphertext => reused.push(Arc::clone(cached)),
                _ => fresh.push((field, ciphertext)),
            }
        }
        (reused, fresh)
    }

    /// Installs a complete listing at `position` (unless a newer one is there).
    pub fn install(&self, workspace: &str, position: Position, entries: Vec<Arc<Cached>>) {
        let mut all = guard(&self.workspaces);
        let entry = all.entry(workspace.to_owned()).or_default();
        if entry
            .listing
            .as_ref()
            .is_some_and(|l| l.position.generation > position.generation)
        {
            return;
        }
        entry.memo = entries
            .iter()
            .map(|c| (c.field.clone(), Arc::clone(c)))
            .collect();
        entry.listing = Some(Listing::new(&self.arena, position, entries));
    }

    /// Runs `read` over the listing if it is at `generation` or newer.
    fn with_listing<R>(
        &self,
        workspace: &str,
        generation: u64,
        read: impl FnOnce(&[Arc<Cached>]) -> R,
    ) -> Option<R> {
        let all = guard(&self.workspaces);
        let listing = all.get(workspace)?.listing.as_ref()?;
        (listing.position.generation >= generation).then(|| read(&listing.by_name))
    }

    /// One LIST page from the listing, if it is current (see [`Self::with_listing`]).
    pub fn page(
        &self,
        workspace: &str,
        generation: u64,
        query: &PageQuery<'_>,
    ) -> Option<Result<ListPage, BackendError>> {
        self.with_listing(workspace, generation, |by_name| {
            page(by_name, &guard(&self.arena), query)
        })
    }

    /// Live secrets in the workspace, if the listing is current.
    pub fn live_count(&self, workspace: &str, generation: u64, now: Timestamp) -> Option<u64> {
        self.with_listing(workspace, generation, |by_name| {
            by_name.iter().filter(|c| !c.expired(now)).count() as u64
        })
    }

    /// Live secrets in the workspace and the first of them (whose record names the
    /// workspace, which its tag hides), if the listing is current.
    pub fn live_sample(
        &self,
        workspace: &str,
        generation: u64,
        now: Timestamp,
    ) -> Option<(u64, Option<Arc<Cached>>)> {
        self.with_listing(workspace, generation, |by_name| {
            let mut live = by_name.iter().filter(|c| !c.expired(now));
            let first = live.next().cloned();
            let count = u64::from(first.is_some()) + live.count() as u64;
            (count, first)
        })
    }

    /// Up to `max` expired secrets of a current listing.
    pub fn expired(
        &self,
        workspace: &str,
        generation: u64,
        now: Timestamp,
        max: usize,
    ) -> Option<Vec<Arc<Cached>>> {
        let all = guard(&self.workspaces);
        let listing = all.get(workspace)?.listing.as_ref()?;
        (listing.position.generation >= generation).then(|| listing.expired(now, max))
    }

    /// The listing's position, if there is one.
    pub fn listing_position(&self, workspace: &str) -> Option<Position> {
        let all = guard(&self.workspaces);
        all.get(workspace)?
            .listing
            .as_ref()
            .map(|l| l.position.clone())
    }
}

/// What one LIST page asks for.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    /// Every pair must match.
    pub filter: &'a Labels,
    /// Start strictly after this name.
    pub after: Option<&'a SecretName>,
    /// Most entries.
    pub limit: usize,
    /// Expired secrets are skipped.
    pub now: Timestamp,
}

fn page(
    by_name: &[Arc<Cached>],
    arena: &LockedArena,
    query: &PageQuery<'_>,
) -> Result<ListPage, BackendError> {
    let start = query.after.map_or(0, |after| {
        let after = after.as_str().as_bytes();
        by_name.partition_point(|c| c.meta.name(arena) <= after)
    });
    // Decoding a record's metadata out of the locked arena can fail; the first failure ends
    // the walk and is the answer.
    let mut failure = None;
    let matching = by_name[start..]
        .iter()
        .filter(|cached| !cached.expired(query.now))
        .map_while(|cached| match cached.meta.read(arena) {
            Ok(meta) => Some(meta),
            Err(err) => {
                failure = Some(err);
                None
            }
        })
        .filter(|meta| meta.labels.matches(query.filter))
        .map(|meta| meta.to_secret_meta());
    let page = crate::rules::page::cut(matching, query.limit);
    match failure {
        Some(err) => Err(err),
        None => Ok(page),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::redis::record::VersionRef;
    use avp_protocol::WorkspaceId;

    fn expiring(
        cache: &MetaCache,
        field: &str,
        name: &str,
        bytes: &[u8],
        expires_at: Option<Timestamp>,
    ) -> Arc<Cached> {
        let meta = Meta {
            workspace: WorkspaceId::new("w").unwrap(),
            name: SecretName::new(name).unwrap(),
            created_at: Timestamp::from_unix(0),
            labels: Labels::empty(),
            expires_at,
            versions: vec![VersionRef {
                number: 1,
                created_at: Timestamp::from_unix(0),
                tag: "t".into(),
            }],
        };
        Cached::new(cache, field.to_owned(), bytes.to_vec(), &meta).unwrap()
    }

    fn cached(cache: &MetaCache, field: &str, name: &str, bytes: &[u8]) -> Arc<Cached> {
        expiring(cache, field, name, bytes, None)
    }

    fn names(cache: &MetaCache, generation: u64) -> Option<Vec<String>> {
        let query = PageQuery {
            filter: &Labels::empty(),
            after: None,
            limit: 100,
            now: Timestamp::from_unix(1),
        };
        let page = cache.page("W", generation, &query)?.unwrap();
        Some(
            page.secrets
                .iter()
                .map(|m| m.name.as_str().to_owned())
                .collect(),
        )
    }

    fn at(generation: u64) -> Position {
        Position {
            generation,
            head: format!("{generation}:x:y"),
        }
    }

    #[test]
    fn a_listing_serves_only_its_generation_or_newer() {
        let cache = MetaCache::new(100);
        assert_eq!(names(&cache, 0), None);
        let entries = vec![
            cached(&cache, "f1", "b", b"1"),
            cached(&cache, "f2", "a", b"2"),
        ];
        cache.install("W", at(5), entries);
        assert_eq!(names(&cache, 5), Some(vec!["a".into(), "b".into()]));
        assert_eq!(names(&cache, 6), None, "a newer generation needs a refresh");
        cache.install("W", at(4), vec![]);
        assert_eq!(
            names(&cache, 5).unwrap().len(),
            2,
            "an older snapshot is ignored"
        );
    }

    #[test]
    fn own_writes_advance_the_listing_only_when_nothing_came_between() {
        let cache = MetaCache::new(100);
        cache.install("W", at(1), vec![cached(&cache, "f1", "a", b"1")]);
        cache.note_write(
            "W",
            "f2",
            Some(cached(&cache, "f2", "b", b"2")),
            Some(at(2)),
        );
        assert_eq!(names(&cache, 2), Some(vec!["a".into(), "b".into()]));
        cache.note_write("W", "f1", None, Some(at(3)));
        assert_eq!(names(&cache, 3), Some(vec!["b".into()]));
        cache.note_write(
            "W",
            "f3",
            Some(cached(&cache, "f3", "c", b"3")),
            Some(at(5)),
        );
        assert_eq!(names(&cache, 5), None, "generation 4 was someone else's");
        assert_eq!(cache.listing_position("W"), Some(at(3)));
    }

    #[test]
    fn changes_bring_a_listing_up_to_date() {
        let cache = MetaCache::new(100);
        cache.install(
            "W",
            at(1),
            vec![
                cached(&cache, "f1", "a", b"1"),
                cached(&cache, "f2", "b", b"2"),
            ],
        );
        let changed = vec![
            ("f1".to_owned(), None),
            ("f2".to_owned(), Some(cached(&cache, "f2", "b", b"2'"))),
            ("f3".to_owned(), Some(cached(&cache, "f3", "c", b"3"))),
        ];
        assert!(cache.apply_changes("W", &at(1), at(4), changed));
        assert_eq!(names(&cache, 4), Some(vec!["b".into(), "c".into()]));
        assert!(cache.memo("W", "f2", b"2'").is_some());
        assert!(cache.memo("W", "f1", b"1").is_none());
        assert!(!cache.apply_changes("W", &at(7), at(9), vec![]), "a gap");
    }

    #[test]
    fn expired_entries_are_found_by_expiry() {
        let cache = MetaCache::new(100);
        let expiring = |field: &str, name: &str, at: i64| {
            expiring(&cache, field, name, b"x", Some(Timestamp::from_unix(at)))
        };
        let entries = vec![
            expiring("f1", "a", 10),
            expiring("f2", "b", 20),
            cached(&cache, "f3", "c", b"x"),
        ];
        cache.install("W", at(1), entries);
        let names = |now: i64, generation: u64| -> Vec<String> {
            let found = cache
                .expired("W", generation, Timestamp::from_unix(now), 10)
                .unwrap();
            found
                .iter()
                .map(|c| c.meta().unwrap().name.as_str().to_owned())
                .collect()
        };
        assert!(names(9, 1).is_empty());
        assert_eq!(names(10, 1), ["a"], "expired at expires_at itself");
        assert_eq!(names(25, 1), ["a", "b"]);
        cache.note_write(
            "W",
            "f1",
            Some(cached(&cache, "f1", "a", b"y")),
            Some(at(2)),
        );
        assert_eq!(names(25, 2), ["b"], "rewritten without expiry");
    }

    #[test]
    fn the_memo_reuses_only_identical_ciphertext() {
        let cache = MetaCache::new(100);
        cache.remember("W", cached(&cache, "f1", "a", b"one"));
        assert!(cache.memo("W", "f1", b"one").is_some());
        assert!(cache.memo("W", "f1", b"two").is_none());
        let (reused, fresh) = cache.reuse(
            "W",
            vec![("f1".into(), b"one".to_vec()), ("f2".into(), b"x".to_vec())],
        );
        assert_eq!((reused.len(), fresh.len()), (1, 1));
    }
}
