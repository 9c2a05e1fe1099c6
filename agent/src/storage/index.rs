//! The in-memory index of secrets the local and memory backends serve from: every
//! workspace's secrets, their retained versions, values kept in a [`LockedArena`].
//!
//! A write is split in two. `plan_*` asks [`crate::rules`] to decide the request against the
//! current state (new version number, labels and expiry resolved) without changing
//! anything; [`SecretStore::apply`] then makes the [`Change`]. A persistent backend makes the
//! change durable between the two, so memory never holds a write the disk does not. Replay
//! at unlock goes through the same `apply`, so a reloaded vault is exactly the one that was
//! written.

use super::{BackendError, Counts};
use crate::locked::{LockedArena, Slot};
use crate::rules::{self, page, write::Live};
use avp_protocol::{
    ExpiryChange, HistoryResult, Labels, Limits, ListPage, RotateResult, Secret, SecretMeta,
    SecretName, SecretValue, StoreResult, Timestamp, VersionInfo, WorkspaceId,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

/// A new version of a secret, fully resolved: what is written to disk and applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutMeta {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The secret.
    pub name: SecretName,
    /// The version this write creates; 1 starts the secret afresh.
    pub version: u32,
    /// When the secret was first created (kept across versions).
    pub created_at: Timestamp,
    /// When this version was written.
    pub updated_at: Timestamp,
    /// The labels from this version on.
    pub labels: Labels,
    /// The expiry from this version on.
    pub expires_at: Option<Timestamp>,
}

impl PutMeta {
    /// The version `head` decides, written at `now`.
    fn new(
        workspace: &WorkspaceId,
        name: &SecretName,
        head: rules::write::Head,
        now: Timestamp,
    ) -> Self {
        Self {
            workspace: workspace.clone(),
            name: name.clone(),
            version: head.version,
            created_at: head.created_at,
            updated_at: now,
            labels: head.labels,
            expires_at: head.expires_at,
        }
    }
}

/// One state change.
#[derive(Debug)]
pub enum Change {
    /// A new version (or a new secret).
    Put {
        /// Everything but the value.
        meta: PutMeta,
        /// The value.
        value: SecretValue,
    },
    /// Remove a secret and all its versions.
    Delete {
        /// The workspace.
        workspace: WorkspaceId,
        /// The secret.
        name: SecretName,
    },
}

/// A replayed change that does not fit the state it is applied to: the data is corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inconsistent;

#[derive(Debug)]
struct Version {
    number: u32,
    created_at: Timestamp,
    value: Slot,
}

#[derive(Debug)]
struct Entry {
    created_at: Timestamp,
    labels: Labels,
    expires_at: Option<Timestamp>,
    /// Retained versions, oldest first; never empty.
    versions: VecDeque<Version>,
}

impl Entry {
    fn expired(&self, now: Timestamp) -> bool {
        rules::is_expired(self.expires_at, now)
    }

    fn live(&self) -> Live<'_> {
        Live {
            version: self.current().number,
            created_at: self.created_at,
            labels: &self.labels,
            expires_at: self.expires_at,
        }
    }

    fn current(&self) -> &Version {
        // Invariant: an entry always holds at least one version.
        &self.versions[self.versions.len() - 1]
    }

    fn meta(&self, name: &SecretName) -> SecretMeta {
        SecretMeta {
            name: name.clone(),
            version: self.current().number,
            labels: self.labels.clone(),
            created_at: self.created_at,
            updated_at: self.current().created_at,
            expires_at: self.expires_at,
        }
    }
}

type Workspace = BTreeMap<SecretName, Entry>;

/// Every workspace's secrets, values in locked memory. Dropping it wipes them.
#[derive(Debug)]
pub struct SecretStore {
    workspaces: HashMap<WorkspaceId, Workspace>,
    arena: LockedArena,
    history: usize,
    limits: Limits,
}

impl SecretStore {
    /// An empty store keeping `history` versions per secret.
    pub fn new(history: usize, limits: Limits) -> Self {
        Self {
            workspaces: HashMap::new(),
            arena: LockedArena::new(),
            history: rules::write::retained(history),
            limits,
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn live(&self, workspace: &WorkspaceId, name: &SecretName, now: Timestamp) -> Option<&Entry> {
        self.workspaces
            .get(workspace)?
            .get(name)
            .filter(|entry| !entry.expired(now))
    }

    /// Decides a STORE.
    pub fn plan_store(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        labels: Option<Labels>,
        expires_at: ExpiryChange,
        now: Timestamp,
    ) -> Result<(Change, StoreResult), BackendError> {
        let live = self.live(workspace, name, now).map(Entry::live);
        let head = rules::write::store(self.limits, live, value.len(), labels, expires_at, now)?;
        if head.creates() {
            self.check_capacity(workspace, now)?;
        }
        let meta = PutMeta::new(workspace, name, head, now);
        let result = StoreResult {
            created: meta.version == 1,
            version: meta.version,
            created_at: meta.created_at,
            updated_at: now,
        };
        Ok((Change::Put { meta, value }, result))
    }

    fn check_capacity(&self, workspace: &WorkspaceId, now: Timestamp) -> Result<(), BackendError> {
        let Some(secrets) = self.workspaces.get(workspace) else {
            return Ok(());
        };
        rules::write::check_room(self.limits, secrets.len(), || {
            secrets.values().filter(|e| !e.expired(now)).count()
        })?;
        Ok(())
    }

    /// Decides a ROTATE: a new version of an existing secret, labels and expiry kept.
    pub fn plan_rotate(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        now: Timestamp,
    ) -> Result<(Change, RotateResult), BackendError> {
        let live = self.live(workspace, name, now).map(Entry::live);
        let (head, previous_version) = rules::write::rotate(self.limits, live, value.len())?;
        let meta = PutMeta::new(workspace, name, head, now);
        let result = RotateResult {
            previous_version,
            new_version: meta.version,
            updated_at: now,
        };
        Ok((Change::Put { meta, value }, result))
    }

    /// Decides a DELETE: `None` when there is nothing (live) to delete.
    pub fn plan_delete(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Option<Change> {
        let live = self.live(workspace, name, now).map(Entry::live);
        rules::write::delete(live).then(|| Change::Delete {
            workspace: workspace.clone(),
            name: name.clone(),
        })
    }

    /// Applies a planned or replayed change.
    pub fn apply(&mut self, change: &Change) -> Result<(), Inconsistent> {
        match change {
            Change::Put { meta, value } => self.apply_put(meta, value.expose_secret()),
            Change::Delete { workspace, name } => {
                self.apply_delete(workspace, name);
                Ok(())
            }
        }
    }

    /// Applies a new version whose value is given as bytes (replay from disk).
    ///
    /// Rules: version 1 starts the secret afresh; an unknown secret may start at any version
    /// (a compacted snapshot keeps only the retained ones); otherwise the version must follow
    /// the current one.
    pub fn apply_put(&mut self, meta: &PutMeta, value: &[u8]) -> Result<(), Inconsistent> {
        let secrets = self.workspaces.entry(meta.workspace.clone()).or_default();
        let restart = match secrets.get(&meta.name) {
            None => true,
            Some(_) if meta.version == 1 => true,
            Some(entry)
                if rules::write::next_version(entry.current().number) == Ok(meta.version) =>
            {
                false
            }
            Some(_) => return Err(Inconsistent),
        };
        let slot = self.arena.insert(value).map_err(|err| {
            tracing::error!(%err, "cannot map locked memory for a value");
            Inconsistent
        })?;
        let version = Version {
            number: meta.version,
            created_at: meta.updated_at,
            value: slot,
        };
        if restart {
            let fresh = Entry {
                created_at: meta.created_at,
                labels: meta.labels.clone(),
                expires_at: meta.expires_at,
                versions: VecDeque::from([version]),
            };
            if let Some(old) = secrets.insert(meta.name.clone(), fresh) {
                free_entry(&mut self.arena, old);
            }
            return Ok(());
        }
        let Some(entry) = secrets.get_mut(&meta.name) else {
            return Err(Inconsistent);
        };
        entry.created_at = meta.created_at;
        entry.labels = meta.labels.clone();
        entry.expires_at = meta.expires_at;
        entry.versions.push_back(version);
        for _ in 0..rules::write::excess(entry.versions.len(), self.history) {
            if let Some(old) = entry.versions.pop_front() {
                self.arena.free(old.value);
            }
        }
        Ok(())
    }

    /// Removes a secret and every version; absent is fine.
    pub fn apply_delete(&mut self, workspace: &WorkspaceId, name: &SecretName) {
        let Some(secrets) = self.workspaces.get_mut(workspace) else {
            return;
        };
        if let Some(entry) = secrets.remove(name) {
            free_entry(&mut self.arena, entry);
        }
        if secrets.is_empty() {
            self.workspaces.remove(workspace);
        }
    }

    /// Drops every secret expired at `now` from memory (their values are wiped).
    pub fn purge_expired(&mut self, now: Timestamp) -> usize {
        let mut purged = 0;
        for secrets in self.workspaces.values_mut() {
            let expired: Vec<SecretName> = secrets
                .iter()
                .filter(|(_, e)| e.expired(now))
                .map(|(n, _)| n.clone())
                .collect();
            for name in expired {
                if let Some(entry) = secrets.remove(&name) {
                    free_entry(&mut self.arena, entry);
                    purged += 1;
                }
            }
        }
        self.workspaces.retain(|_, secrets| !secrets.is_empty());
        purged
    }

    /// RETRIEVE.
    pub fn retrieve(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        version: Option<u32>,
        now: Timestamp,
    ) -> Result<Secret, BackendError> {
        let entry = self
            .live(workspace, name, now)
            .ok_or(BackendError::NotFound)?;
        let found = match version {
            None => entry.current(),
            Some(n) => entry
                .versions
                .iter()
                .find(|v| v.number == n)
                .ok_or(BackendError::NotFound)?,
        };
        Ok(Secret {
            name: name.clone(),
            value: SecretValue::from_slice(self.arena.get(&found.value)),
            version: found.number,
            labels: entry.labels.clone(),
            created_at: entry.created_at,
            updated_at: entry.current().created_at,
            expires_at: entry.expires_at,
        })
    }

    /// LIST one page: live secrets after `after`, filtered, sorted by name.
    pub fn list(
        &self,
        workspace: &WorkspaceId,
        filter: &Labels,
        after: Option<&SecretName>,
        limit: usize,
        now: Timestamp,
    ) -> ListPage {
        let Some(secrets) = self.workspaces.get(workspace) else {
            return ListPage {
                secrets: Vec::new(),
                next_cursor: None,
            };
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let matching = secrets
            .range::<SecretName, _>((start, Bound::Unbounded))
            .filter(|(_, e)| !e.expired(now) && e.labels.matches(filter))
            .map(|(name, entry)| entry.meta(name));
        page::cut(matching, limit)
    }

    /// HISTORY: retained versions, oldest first.
    pub fn history(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<HistoryResult, BackendError> {
        let entry = self
            .live(workspace, name, now)
            .ok_or(BackendError::NotFound)?;
        Ok(HistoryResult {
            name: name.clone(),
            versions: entry
                .versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.number,
                    created_at: v.created_at,
                })
                .collect(),
        })
    }

    /// Live secrets and the workspaces holding them.
    pub fn counts(&self, now: Timestamp) -> Counts {
        let mut counts = Counts::default();
        for secrets in self.workspaces.values() {
            let live = secrets.values().filter(|e| !e.expired(now)).count() as u64;
            if live > 0 {
                counts.workspaces += 1;
                counts.secrets += live;
            }
        }
        counts
    }

    /// Each workspace holding live secrets with their number, sorted by workspace id.
    pub fn workspace_counts(&self, now: Timestamp) -> Vec<(WorkspaceId, u64)> {
        let mut counts: Vec<_> = self
            .workspaces
            .iter()
            .filter_map(|(workspace, secrets)| {
                let live = secrets.values().filter(|e| !e.expired(now)).count() as u64;
                (live > 0).then(|| (workspace.clone(), live))
            })
            .collect();
        counts.sort_unstable();
        counts
    }

    /// Every retained version of every secret live at `now`, in replay order (per secret,
    /// oldest version first): what a compacted snapshot must hold.
    pub fn for_each_version(
        &self,
        now: Timestamp,
        mut visit: impl FnMut(&PutMeta, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for (workspace, secrets) in &self.workspaces {
            for (name, entry) in secrets.iter().filter(|(_, e)| !e.expired(now)) {
                for version in &entry.versions {
                    let meta = PutMeta {
                        workspace: workspace.clone(),
                        name: name.clone(),
                        version: version.number,
                        created_at: entry.created_at,
                        updated_at: version.created_at,
                        labels: entry.labels.clone(),
                        expires_at: entry.expires_at,
                    };
                    visit(&meta, self.arena.get(&version.value))?;
                }
            }
        }
        Ok(())
    }

    /// Retained versions across all secrets (the records a snapshot holds).
    pub fn version_count(&self) -> usize {
        self.workspaces
            .values()
            .flat_map(BTreeMap::values)
            .map(|e| e.versions.len())
            .sum()
    }

    /// Bytes of values held in locked memory.
    pub fn value_bytes(&self) -> usize {
        self.arena.live_bytes()
    }
}

fn free_entry(arena: &mut LockedArena, entry: Entry) {
    for version in entry.versions {
        arena.free(version.value);
    }
}
