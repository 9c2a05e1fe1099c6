//! Every response, with a typed result for each operation. A response answers exactly the
//! request before it on the same connection.

use crate::error::ErrorResponse;
use crate::secret::SecretValue;
use crate::types::{Cursor, Labels, Limits, SecretName, SessionId, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};

/// A response frame.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Hello`: the agent's protocol version (equal to the client's).
    Hello {
        /// The protocol version the agent speaks.
        version: u32,
    },
    /// Answer to `Discover`.
    Discover(DiscoverInfo),
    /// Answer to `Authenticate`.
    Authenticated(SessionInfo),
    /// Answer to `Terminate`.
    Terminated,
    /// Answer to `Store`.
    Stored(StoreResult),
    /// Answer to `Retrieve`.
    Retrieved(Secret),
    /// Answer to `Delete`.
    Deleted(DeleteResult),
    /// Answer to `List`.
    Listed(ListPage),
    /// Answer to `Rotate`.
    Rotated(RotateResult),
    /// Answer to `History`.
    History(HistoryResult),
    /// Answer to `Init`: the vault exists and is unlocked.
    Initialized,
    /// Answer to `Unlock`.
    Unlocked,
    /// Answer to `Lock`.
    Locked,
    /// Answer to `Status`.
    Status(StatusInfo),
    /// Answer to `ChangePassphrase`.
    PassphraseChanged,
    /// Any request may be answered with an error instead.
    Error(ErrorResponse),
}

impl Response {
    /// The variant's name, for "unexpected response" diagnostics (never its payload).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "Hello",
            Self::Discover(_) => "Discover",
            Self::Authenticated(_) => "Authenticated",
            Self::Terminated => "Terminated",
            Self::Stored(_) => "Stored",
            Self::Retrieved(_) => "Retrieved",
            Self::Deleted(_) => "Deleted",
            Self::Listed(_) => "Listed",
            Self::Rotated(_) => "Rotated",
            Self::History(_) => "History",
            Self::Initialized => "Initialized",
            Self::Unlocked => "Unlocked",
            Self::Locked => "Locked",
            Self::Status(_) => "Status",
            Self::PassphraseChanged => "PassphraseChanged",
            Self::Error(_) => "Error",
        }
    }
}

/// Whether the active backend can serve secrets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendStatus {
    /// Unlocked and reachable.
    Available,
    /// The vault is locked (or not yet initialized).
    Locked,
    /// The backend cannot be reached (e.g. Redis is down).
    Unavailable,
}

impl BackendStatus {
    /// The AVP string form: `available`, `locked`, `unavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Locked => "locked",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The active storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `vault`, `memory` or `redis`.
    pub name: String,
    /// Whether it can serve secrets now.
    pub status: BackendStatus,
}

/// Capability flags; each is true only if the agent implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Retained versions and `RETRIEVE{version}`.
    pub versioning: bool,
    /// `expires_at` on secrets.
    pub expiration: bool,
    /// The ROTATE operation.
    pub rotation: bool,
    /// An audit log of access decisions.
    pub audit: bool,
}

/// The DISCOVER answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverInfo {
    /// [`crate::PROTOCOL_VERSION`] of the agent.
    pub protocol_version: u32,
    /// The agent's software version.
    pub agent_version: String,
    /// Conformance level, `full`.
    pub conformance: String,
    /// The active backend and its status.
    pub backend: BackendInfo,
    /// What is implemented.
    pub capabilities: Capabilities,
    /// How callers authenticate (avp: `peer_credentials`, same uid as the agent).
    pub auth_methods: Vec<String>,
    /// The enforced limits.
    pub limits: Limits,
}

/// A newly opened session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The bearer id to pass with every operation.
    pub session: SessionId,
    /// The workspace the session is bound to.
    pub workspace: WorkspaceId,
    /// When the session stops working.
    pub expires_at: Timestamp,
    /// The lifetime granted, after defaulting and clamping.
    pub ttl_seconds: u64,
}

/// Result of STORE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreResult {
    /// True if the secret did not exist before.
    pub created: bool,
    /// The version just written (1 when created).
    pub version: u32,
    /// When the secret was first created (kept across updates).
    pub created_at: Timestamp,
    /// When this version was written.
    pub updated_at: Timestamp,
}

/// Result of RETRIEVE: the value and its metadata.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// The secret's name.
    pub name: SecretName,
    /// The value of the requested version.
    pub value: SecretValue,
    /// The version returned.
    pub version: u32,
    /// The secret's labels.
    pub labels: Labels,
    /// When the secret was first created.
    pub created_at: Timestamp,
    /// When the current version was written.
    pub updated_at: Timestamp,
    /// When the secret expires, if ever.
    pub expires_at: Option<Timestamp>,
}

/// A secret's metadata, as LIST returns it (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    /// The secret's name.
    pub name: SecretName,
    /// The current version.
    pub version: u32,
    /// The secret's labels.
    pub labels: Labels,
    /// When the secret was first created.
    pub created_at: Timestamp,
    /// When the current version was written.
    pub updated_at: Timestamp,
    /// When the secret expires, if ever.
    pub expires_at: Option<Timestamp>,
}

/// Result of LIST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// This page, sorted by the byte order of the name.
    pub secrets: Vec<SecretMeta>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// Result of DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// False when there was nothing to delete (not an error).
    pub deleted: bool,
}

/// Result of ROTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateResult {
    /// The version that was current before.
    pub previous_version: u32,
    /// The version just written.
    pub new_version: u32,
    /// When the new version was written.
    pub updated_at: Timestamp,
}

/// One retained version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// When it was written.
    pub created_at: Timestamp,
}

/// Result of HISTORY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResult {
    /// The secret's name.
    pub name: SecretName,
    /// Retained versions, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// Whether a vault exists and is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VaultState {
    /// No vault yet: run `avp init`.
    Uninitialized,
    /// A vault exists but its plaintext is not in memory.
    Locked,
    /// The vault is open.
    Unlocked,
}

impl VaultState {
    /// `uninitialized`, `locked` or `unlocked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Uninitialized => "uninitialized",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
        }
    }
}

/// Facts about the agent process's hardening, as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardening {
    /// `PR_GET_DUMPABLE`: false means no core dumps and no same-uid ptrace.
    pub dumpable: bool,
    /// The soft `RLIMIT_CORE`, in bytes (0 = no core file).
    pub core_limit: u64,
    /// Bytes of memory the agent holds locked (`VmLck`).
    pub locked_memory_bytes: u64,
    /// The soft `RLIMIT_MEMLOCK`, in bytes; `None` when unlimited.
    pub memlock_limit: Option<u64>,
}

/// The STATUS answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Uninitialized, locked or unlocked.
    pub state: VaultState,
    /// Where the vault lives (a directory or a Redis URL without credentials).
    pub vault_location: String,
    /// The backend's name.
    pub backend: String,
    /// Workspaces holding at least one secret (0 while locked).
    pub workspaces: u64,
    /// Live secrets across all workspaces (0 while locked).
    pub secrets: u64,
    /// Live sessions.
    pub sessions: u64,
    /// Seconds until the idle timer locks the vault, while unlocked.
    pub idle_lock_in_seconds: Option<u64>,
    /// Seconds until the maximum unlock lifetime locks the vault, while unlocked.
    pub max_unlock_in_seconds: Option<u64>,
    /// The agent's software version.
    pub agent_version: String,
    /// The agent's protocol version.
    pub protocol_version: u32,
    /// The agent's process id.
    pub pid: u32,
    /// Hardening facts.
    pub hardening: Hardening,
    /// The audit log's absolute path (what `avp audit` reads); `None` when the agent keeps
    /// no audit log.
    pub audit_log: Option<String>,
}
