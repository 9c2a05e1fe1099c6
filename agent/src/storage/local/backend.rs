//! The local backend: a vault directory (see [`super::disk`]) owned by this agent alone,
//! served from locked memory.

use super::disk::{self, DiskVault};
use crate::fsutil::{self, LockError, LockFile};
use crate::storage::index::{Change, SecretStore};
use crate::storage::served::{Persist, Served};
use crate::storage::{Backend, BackendError, BackendSettings, KeyStore};
use avp_protocol::{Passphrase, Timestamp};
use std::path::{Path, PathBuf};

/// The lock file that makes one agent the owner of a vault directory.
pub const LOCK_FILE: &str = ".lock";

/// A vault directory, locked for this agent for as long as the value lives.
#[derive(Debug)]
pub struct LocalKeyStore {
    dir: PathBuf,
    settings: BackendSettings,
    _lock: LockFile,
}

impl LocalKeyStore {
    /// Creates `dir` (0700) if needed, checks it is private, and takes its lock. A second
    /// agent on the same directory fails here with a message naming the first.
    pub fn open(dir: &Path, settings: BackendSettings) -> Result<Self, BackendError> {
        fsutil::ensure_private_dir(dir, "vault directory").map_err(|err| {
            // Not logged here: the caller reports it (`avp-agent: …` once at start-up).
            BackendError::io(
                "preparing the vault directory",
                std::io::Error::other(format!("{err:#}")),
            )
        })?;
        let lock = LockFile::acquire(&dir.join(LOCK_FILE)).map_err(|err| match err {
            LockError::Held(pid) => BackendError::io(
                "locking the vault directory",
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "another avp-agent{} already owns the vault {}; stop it or use --vault",
                        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                        dir.display()
                    ),
                ),
            ),
            LockError::Io(err) => BackendError::io("locking the vault directory", err),
        })?;
        disk::remove_stale_temps(dir);
        Ok(Self {
            dir: dir.to_path_buf(),
            settings,
            _lock: lock,
        })
    }
}

impl Persist for DiskVault {
    fn persist(&mut self, change: &Change) -> Result<(), BackendError> {
        DiskVault::persist(self, change)
    }

    fn after_write(&mut self, store: &SecretStore, now: Timestamp) {
        if self.compaction_due()
            && let Err(err) = self.compact(store, now)
        {
            // The write itself is durable in the journal; compaction is retried next write.
            tracing::warn!(%err, "journal compaction failed; will retry");
        }
    }
}

fn serve(vault: DiskVault, store: SecretStore) -> Box<dyn Backend> {
    Box::new(Served::new("vault", store, vault))
}

impl KeyStore for LocalKeyStore {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn is_initialized(&self) -> Result<bool, BackendError> {
        disk::is_initialized(&self.dir).map_err(|err| BackendError::io("reading the vault", err))
    }

    fn init(
        &self,
        passphrase: &Passphrase,
        work_factor: u8,
    ) -> Result<Box<dyn Backend>, BackendError> {
        let (vault, store) = DiskVault::create(&self.dir, passphrase, work_factor, self.settings)?;
        tracing::info!(vault = %self.dir.display(), work_factor, "vault created");
        Ok(serve(vault, store))
    }

    fn unlock(&self, passphrase: &Passphrase) -> Result<Box<dyn Backend>, BackendError> {
        let (vault, store) = DiskVault::open(&self.dir, passphrase, self.settings)?;
        Ok(serve(vault, store))
    }

    fn verify(&self, passphrase: &Passphrase) -> Result<(), BackendError> {
        disk::verify_passphrase(&self.dir, passphrase)
    }

    fn change_passphrase(&self, old: &Passphrase, new: &Passphrase) -> Result<(), BackendError> {
        disk::change_passphrase(&self.dir, old, new)
    }
}
