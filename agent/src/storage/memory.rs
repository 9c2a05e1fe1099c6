//! The in-memory backend: every rule, no persistence. For tests, the conformance suite and
//! the fuzz target.

use super::BackendError;
use super::BackendSettings;
use super::index::{Change, SecretStore};
use super::served::{Persist, Served};

/// Nothing to persist.
#[derive(Debug, Default)]
pub struct Volatile;

impl Persist for Volatile {
    fn persist(&mut self, _change: &Change) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A [`SecretStore`] served from memory and never written anywhere.
pub type MemoryBackend = Served<Volatile>;

impl MemoryBackend {
    /// An empty in-memory backend.
    pub fn in_memory(settings: BackendSettings) -> Self {
        Self::new(
            "memory",
            SecretStore::new(settings.history, settings.limits),
            Volatile,
        )
    }
}
