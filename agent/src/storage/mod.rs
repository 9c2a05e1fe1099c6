//! Storage backends. The agent handles sessions and authorization; a backend carries the AVP
//! operations keyed by workspace and applies every rule of PROTOCOL.md §9.2–§9.7 and §10 below the session
//! layer (versions, labels, expiry, pagination, limits) by calling [`crate::rules`], which
//! decides them; a backend only loads, seals and persists. Storage never sees sessions:
//! nothing here imports the layers above it (checked by `agent/tests/layers.rs`).
//!
//! Two traits split the job:
//! - [`KeyStore`]: where the passphrase-wrapped identity and the encrypted records live
//!   (a vault directory, a Redis server). It creates, unlocks and re-wraps; unlocking yields
//!   an open [`Backend`].
//! - [`Backend`]: an unlocked store serving the AVP operations. Dropping it wipes every
//!   plaintext it holds; that is how the agent locks.
//!
//! Built by one factory, [`open_key_store`]. Modules:
//! - [`local`]: the age vault in a local directory (`--backend vault`).
//! - [`redis`]: a vault shared through a Redis server (cargo feature `redis`).
//! - [`index`]: the in-memory index of secrets, values in locked memory, that the local and
//!   memory backends serve from.
//! - [`served`]: the backend over an [`index::SecretStore`], persisted by a [`served::Persist`].
//! - [`stale`]: marks an answer served from last-known state, for the audit line.
//! - [`memory`]: the in-memory backend (no persistence), for tests and fuzzing.
//! - [`crypto`]: age — the passphrase-wrapped identity and record encryption, which both
//!   the local and the Redis vault use; [`codec`]: their bounded bincode record encoding.
//! - `conformance` (cargo feature `testing`): the rule suite every backend runs.

pub mod codec;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod crypto;
pub mod index;
pub mod local;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
pub mod served;
pub mod stale;

pub use memory::MemoryBackend;

use crate::rules::RuleError;

use avp_protocol::{
    ErrorCode, ExpiryChange, HistoryResult, Labels, Limits, ListPage, Passphrase, RotateResult,
    Secret, SecretName, SecretValue, StoreResult, Timestamp, WorkspaceId,
};
use std::path::PathBuf;

/// Why a backend operation failed. Messages are fixed text: never a value, a passphrase or
/// bytes from the request.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No such secret or version, or it has expired.
    #[error("secret not found")]
    NotFound,
    /// The value exceeds `Limits::max_secret_value_length`.
    #[error("value exceeds the 65,536-byte limit")]
    ValueTooLarge,
    /// The workspace already holds `Limits::max_secrets_per_workspace` secrets.
    #[error("workspace holds the maximum number of secrets (10,000): delete some first")]
    CapacityExceeded,
    /// The request is unacceptable (a bad page size…).
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// Wrong passphrase, or data that does not authenticate under this vault's keys.
    #[error("{0}")]
    AuthenticationFailed(&'static str),
    /// Stored data is corrupt, truncated or belongs to another vault. It is left untouched.
    #[error("{0}")]
    Integrity(&'static str),
    /// No vault has been created yet.
    #[error("no vault exists yet: run `avp init`")]
    NotInitialized,
    /// `init` on a store that already holds a vault.
    #[error("a vault already exists here; unlock it with `avp unlock`")]
    AlreadyInitialized,
    /// Encryption failed for a reason other than a wrong key.
    #[error("encryption failed: {0}")]
    Encryption(&'static str),
    /// Storage failed (disk full, read-only, I/O error). Nothing was acknowledged.
    #[error("storage failed ({context}): {source}")]
    Io {
        /// What the backend was doing, fixed text.
        context: &'static str,
        /// The underlying error (paths only, never contents).
        source: std::io::Error,
    },
    /// The storage service cannot be reached (Redis down).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl BackendError {
    /// The one mapping from backend failures to wire codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::SecretNotFound,
            Self::ValueTooLarge => ErrorCode::ValueTooLarge,
            Self::CapacityExceeded => ErrorCode::CapacityExceeded,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::AuthenticationFailed(_) => ErrorCode::AuthenticationFailed,
            Self::Integrity(_) => ErrorCode::IntegrityError,
            Self::NotInitialized => ErrorCode::VaultNotInitialized,
            Self::AlreadyInitialized => ErrorCode::InvalidRequest,
            Self::Encryption(_) => ErrorCode::EncryptionError,
            Self::Io { .. } => ErrorCode::BackendError,
            Self::Unavailable(_) => ErrorCode::BackendUnavailable,
        }
    }

    /// An I/O failure with fixed context text.
    pub fn io(context: &'static str, source: std::io::Error) -> Self {
        Self::Io { context, source }
    }
}

impl From<RuleError> for BackendError {
    fn from(err: RuleError) -> Self {
        match err {
            RuleError::NotFound => Self::NotFound,
            RuleError::ValueTooLarge => Self::ValueTooLarge,
            RuleError::CapacityExceeded => Self::CapacityExceeded,
            RuleError::InvalidRequest(why) => Self::InvalidRequest(why),
        }
    }
}

/// Counters for STATUS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Workspaces holding at least one live secret.
    pub workspaces: u64,
    /// Live (unexpired) secrets across all workspaces.
    pub secrets: u64,
}

/// Settings every backend honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSettings {
    /// Versions kept per secret (contract default 10, at least 1).
    pub history: usize,
    /// The limits to enforce.
    pub limits: Limits,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            history: 10,
            limits: Limits::AVP,
        }
    }
}

/// An unlocked store serving the AVP operations for every workspace.
///
/// Rules every implementation follows (decided by [`crate::rules`]; the conformance suite
/// checks each):
/// - `store`: creates (`created`, version 1) or adds version old+1 keeping `created_at`;
///   `labels: None` keeps, `Some(empty)` clears; `expires_at` keeps, sets or clears, and a
///   time set at or before `now` is `InvalidRequest` ([`crate::rules::PAST_EXPIRY`]). Value size and the
///   per-workspace count are enforced here.
/// - The last `history` versions are retained; older ones are dropped.
/// - An expired secret (`expires_at <= now`) is invisible to every operation and counts as
///   absent (a later store starts again at version 1); it is purged lazily, never by a read
///   writing to storage.
/// - `delete` removes every version; `Ok(false)` when absent.
/// - `list` is sorted by the byte order of the name, filters by every label pair, starts
///   strictly after `after`, returns at most `limit` and a next cursor only if more remain.
/// - Writes are durable when they return `Ok`.
pub trait Backend: Send + Sync {
    /// `vault`, `memory`, `redis`.
    fn name(&self) -> &'static str;

    /// STORE.
    fn store(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        labels: Option<Labels>,
        expires_at: ExpiryChange,
        now: Timestamp,
    ) -> Result<StoreResult, BackendError>;

    /// RETRIEVE the current version, or a retained one.
    fn retrieve(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        version: Option<u32>,
        now: Timestamp,
    ) -> Result<Secret, BackendError>;

    /// DELETE every version.
    fn delete(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<bool, BackendError>;

    /// LIST one page.
    fn list(
        &self,
        workspace: &WorkspaceId,
        label_filter: &Labels,
        after: Option<&SecretName>,
        limit: usize,
        now: Timestamp,
    ) -> Result<ListPage, BackendError>;

    /// ROTATE an existing secret, keeping labels and expiry.
    fn rotate(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        value: SecretValue,
        now: Timestamp,
    ) -> Result<RotateResult, BackendError>;

    /// HISTORY: retained versions, oldest first.
    fn history(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        now: Timestamp,
    ) -> Result<HistoryResult, BackendError>;

    /// Counters for STATUS.
    fn counts(&self, now: Timestamp) -> Counts;

    /// WORKSPACES: every workspace holding live secrets and how many, sorted by id.
    /// Unlike [`Backend::counts`] it fails rather than under-report (Redis down).
    fn workspaces(&self, now: Timestamp) -> Result<Vec<(WorkspaceId, u64)>, BackendError>;
}

/// Where a vault lives: creates it, unlocks it, re-wraps its identity.
pub trait KeyStore: Send + Sync {
    /// `vault`, `memory`, `redis`.
    fn name(&self) -> &'static str;

    /// A human-readable location (directory, or a URL without credentials).
    fn location(&self) -> String;

    /// Whether the storage service answered the last time it was used. Never does I/O:
    /// DISCOVER reports it as `unavailable`. Local storage is always reachable.
    fn is_reachable(&self) -> bool {
        true
    }

    /// Since when the storage service has been unreachable while an unlocked vault keeps
    /// answering reads from what it last read (DISCOVER and STATUS say `degraded`). Never
    /// does I/O; local storage is never degraded.
    fn degraded_since(&self) -> Option<Timestamp> {
        None
    }

    /// Whether a vault exists here.
    fn is_initialized(&self) -> Result<bool, BackendError>;

    /// Creates a vault with a fresh identity wrapped by `passphrase` at scrypt
    /// `work_factor` (log2 N) and returns it unlocked. `AlreadyInitialized` if one exists.
    fn init(
        &self,
        passphrase: &Passphrase,
        work_factor: u8,
    ) -> Result<Box<dyn Backend>, BackendError>;

    /// Unwraps the identity (one scrypt, work factor capped at [`MAX_UNLOCK_WORK_FACTOR`]) and
    /// opens the records. `AuthenticationFailed` for a wrong passphrase; `Integrity` for
    /// records that do not decrypt — in which case nothing is written.
    fn unlock(&self, passphrase: &Passphrase) -> Result<Box<dyn Backend>, BackendError>;

    /// Checks `passphrase` by unwrapping the identity (the same scrypt as an unlock) without
    /// opening the records: UNLOCK of an unlocked vault must still refuse a wrong one.
    /// `AuthenticationFailed` when wrong.
    fn verify(&self, passphrase: &Passphrase) -> Result<(), BackendError>;

    /// Re-wraps the identity under `new`; records are untouched.
    fn change_passphrase(&self, old: &Passphrase, new: &Passphrase) -> Result<(), BackendError>;
}

/// Default scrypt work factor (log2 N) at init: about 0.75 s and 256 MiB.
pub const DEFAULT_WORK_FACTOR: u8 = 18;
/// Lowest work factor `init` accepts.
pub const MIN_WORK_FACTOR: u8 = 10;
/// The most an unlock will spend: a hostile identity file cannot demand more.
pub const MAX_UNLOCK_WORK_FACTOR: u8 = 22;

/// Which backend the agent uses.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// The age vault in a local directory.
    Local {
        /// The vault directory.
        dir: PathBuf,
    },
    /// A vault kept in Redis.
    #[cfg(feature = "redis")]
    Redis {
        /// `redis://`, `rediss://`, `unix://` or `redis+sentinel://`; may hold a password,
        /// so never printed.
        url: String,
        /// Replica acknowledgement, failover bound, stale reads.
        options: redis::RedisOptions,
    },
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            #[cfg(feature = "redis")]
            Self::Redis { .. } => f.write_str("Redis { url: [REDACTED] }"),
        }
    }
}

/// The one factory: opens the key store a configuration names. For the vault this takes
/// the directory's exclusive lock, so a second agent on the same vault fails here; Redis is
/// shared by design, and an unreachable Redis does not stop the agent from starting.
pub fn open_key_store(
    config: &BackendConfig,
    settings: BackendSettings,
) -> Result<Box<dyn KeyStore>, BackendError> {
    match config {
        BackendConfig::Local { dir } => Ok(Box::new(local::LocalKeyStore::open(dir, settings)?)),
        #[cfg(feature = "redis")]
        BackendConfig::Redis { url, options } => Ok(Box::new(redis::RedisKeyStore::open_with(
            url, *options, settings,
        )?)),
    }
}
