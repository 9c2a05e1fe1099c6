//! The backends that serve from process memory — the local age vault and the in-memory
//! backend — share this one implementation of [`Backend`]: a [`SecretStore`] behind a
//! reader-writer lock, and a [`Persist`] step that makes each change durable before it is
//! applied.
//!
//! Writers take the persist mutex first, so they are serialised and plan against a state
//! nobody else can change; readers only ever take the read lock, held for a lookup and a
//! copy, so a write's `fdatasync` never stalls a RETRIEVE.

use super::index::{Change, SecretStore};
use super::{Backend, BackendError, Counts};
use crate::sync::guard;
use avp_protocol::{
    ExpiryChange, HistoryResult, Labels, ListPage, RotateResult, Secret, SecretName, SecretValue,
    StoreResult, Timestamp, WorkspaceId,
};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Makes a change durable. Called with writers serialised, before the change is applied.
pub trait Persist: Send {
    /// Persists `change`; on error nothing may be acknowledged.
    fn persist(&mut self, change: &Change) -> Result<(), BackendError>;

    /// Housekeeping after a write was applied (e.g. compaction), with readers still served.
    fn after_write(&mut self, _store: &SecretStore, _now: Timestamp) {}
}

/// A [`SecretStore`] served from memory, persisted by `P`.
#[derive(Debug)]
pub struct Served<P> {
    name: &'static str,
    store: RwLock<SecretStore>,
    persist: Mutex<P>,
}

impl<P: Persist> Served<P> {
    /// Serves `store` (already loaded), persisting through `persist`.
    pub fn new(name: &'static str, store: SecretStore, persist: P) -> Self {
        Self {
            name,
            store: RwLock::new(store),
            persist: Mutex::new(persist),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, SecretStore> {
        self.store
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, SecretStore> {
        self.store
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Plans against the current state, persists the change, then applies it.
    fn write<R>(
        &self,
        now: Timestamp,
        plan: impl FnOnce(&SecretStore) -> Result<(Option<Change>, R), BackendError>,
    ) -> Result<R, BackendError> {
        let mut persist = guard(&self.persist);
        let (change, result) = plan(&self.read())?;
        let Some(change) = change else {
            return Ok(result);
        };
        persist.persist(&change)?;
        self.write_lock().apply(&change).map_err(|_| {
            BackendError::io(
                "loading a stored value into locked memory",
                std::io::Error::other("out of memory: restart the agent to load the write"),
            )
        })?;
        persist.after_write(&self.read(), now);
        Ok(result)
    }
}

impl<P: Persist> Backend for Served<P> {
    fn name(&self) -> &'static str {
        self.name
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
        self.write(now, |store| {
            let (change, result) =
                store.plan_store(workspace, name, value, labels, expires_at, now)?;
            Ok((Some(change), result))
        })
    }

    fn retrieve(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        version: Option<u32>,
        now: Timestamp,
    ) -> Result<Secret, BackendError> {
        self.read().retrieve(workspace, name, version, now)
    }

    fn delete(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        self.write(now, |store| {
            let change = store.plan_delete(workspace, name, now);
            let deleted = change.is_some();
            Ok((change, deleted))
        })
    }

    fn list(
        &self,
        workspace: &WorkspaceId,
        label_filter: &Labels,
        after: Option<&SecretName>,
        limit: usize,
        now: Timestamp,
    ) -> Result<ListPage, BackendError> {
        Ok(self.read().list(workspace, label_filter, after, limit, now))
    }

    fn rotate(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        now: Timestamp,
    ) -> Result<RotateResult, BackendError> {
        self.write(now, |store| {
            let (change, result) = store.plan_rotate(workspace, name, value, now)?;
            Ok((Some(change), result))
        })
    }

    fn history(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<HistoryResult, BackendError> {
        self.read().history(workspace, name, now)
    }

    fn counts(&self, now: Timestamp) -> Counts {
        self.read().counts(now)
    }

    fn workspaces(&self, now: Timestamp) -> Result<Vec<(WorkspaceId, u64)>, BackendError> {
        Ok(self.read().workspace_counts(now))
    }
}
