//! Every request a client may send. `Hello` must stay the first variant with a single `u32`
//! so that peers of any protocol version can read each other's greeting.

use crate::secret::{Passphrase, SecretValue};
use crate::types::{Cursor, ExpiryChange, Labels, SecretName, SessionId, WorkspaceId};
use serde::{Deserialize, Serialize};

/// A request frame. Secret values and passphrases travel in zeroizing types whose `Debug`
/// is redacted, so `{:?}` of a request never shows them.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// The first message on every connection: the client's [`crate::PROTOCOL_VERSION`].
    Hello {
        /// The protocol version the client speaks.
        version: u32,
    },
    /// What this agent is and can do; needs no session.
    Discover,
    /// Opens a session bound to `workspace` and to the caller's uid.
    Authenticate {
        /// The workspace every operation of the session acts on.
        workspace: WorkspaceId,
        /// A free-form name for the caller (recorded in the audit log), at most 255 bytes.
        agent_id: String,
        /// Requested lifetime; `None` or 0 means the default, larger values are clamped.
        ttl_seconds: Option<u64>,
        /// On a locked vault: `false` answers `VAULT_LOCKED` at once; `true` asks the agent
        /// to unlock it through its pinentry (if it has one) and wait for the outcome,
        /// bounded (PROTOCOL.md §9.1). New in protocol version 2.
        wait_for_unlock: bool,
    },
    /// Ends a session before its expiry.
    Terminate {
        /// The session to end.
        session: SessionId,
    },
    /// Creates a secret or adds a new version of it.
    Store {
        /// The session, which names the workspace.
        session: SessionId,
        /// The secret's name.
        name: SecretName,
        /// The value, any bytes up to the value limit.
        value: SecretValue,
        /// `None` keeps the existing labels; `Some(empty)` clears them.
        labels: Option<Labels>,
        /// Keep, set (a future time) or clear the expiry.
        expires_at: ExpiryChange,
    },
    /// Reads the current (or a retained older) version of a secret.
    Retrieve {
        /// The session, which names the workspace.
        session: SessionId,
        /// The secret's name.
        name: SecretName,
        /// A retained version number; `None` means the current one.
        version: Option<u32>,
    },
    /// Removes a secret and all its versions.
    Delete {
        /// The session, which names the workspace.
        session: SessionId,
        /// The secret's name.
        name: SecretName,
    },
    /// One page of secret metadata, sorted by name.
    List {
        /// The session, which names the workspace.
        session: SessionId,
        /// Only secrets carrying every one of these pairs.
        label_filter: Labels,
        /// Where the previous page ended; `None` for the first page.
        cursor: Option<Cursor>,
        /// Page size, 1–1,000; `None` means 100.
        limit: Option<u32>,
    },
    /// Replaces the value of an existing secret, keeping its labels and expiry.
    Rotate {
        /// The session, which names the workspace.
        session: SessionId,
        /// The secret's name.
        name: SecretName,
        /// The new value.
        value: SecretValue,
    },
    /// The retained versions of a secret (numbers and times, never values).
    History {
        /// The session, which names the workspace.
        session: SessionId,
        /// The secret's name.
        name: SecretName,
    },
    /// Creates the vault and leaves it unlocked.
    Init {
        /// The passphrase that wraps the vault's identity.
        passphrase: Passphrase,
        /// scrypt work factor (log2 N), 10–22; `None` means 18.
        work_factor: Option<u8>,
    },
    /// Unlocks the vault.
    Unlock {
        /// The vault's passphrase.
        passphrase: Passphrase,
    },
    /// Locks the vault: wipes every plaintext and ends every session.
    Lock,
    /// The agent's state, counters, timers and hardening facts.
    Status,
    /// Re-wraps the vault identity under a new passphrase.
    ChangePassphrase {
        /// The current passphrase.
        old: Passphrase,
        /// The new passphrase.
        new: Passphrase,
    },
    /// The workspaces holding live secrets, with their counts; needs no session (the
    /// socket's peer check authorizes it, as for `Status`).
    Workspaces,
    /// `Retrieve` in the session that the latest successful `Authenticate` on this
    /// connection opened. A client cannot know a session id before `Authenticate` answers,
    /// so this lets it send `Hello`, `Authenticate`, this and
    /// [`Request::TerminateConnectionSession`] in one write (PROTOCOL.md §6.17).
    RetrieveInConnectionSession {
        /// The secret's name.
        name: SecretName,
        /// A retained version number; `None` means the current one.
        version: Option<u32>,
    },
    /// `Terminate` of the session that the latest successful `Authenticate` on this
    /// connection opened (PROTOCOL.md §6.18).
    TerminateConnectionSession,
}

impl Request {
    /// The operation's name as it appears in logs and the audit trail (never its payload).
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "HELLO",
            Self::Discover => "DISCOVER",
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::Terminate { .. } => "TERMINATE",
            Self::Store { .. } => "STORE",
            Self::Retrieve { .. } => "RETRIEVE",
            Self::Delete { .. } => "DELETE",
            Self::List { .. } => "LIST",
            Self::Rotate { .. } => "ROTATE",
            Self::History { .. } => "HISTORY",
            Self::Init { .. } => "INIT",
            Self::Unlock { .. } => "UNLOCK",
            Self::Lock => "LOCK",
            Self::Status => "STATUS",
            Self::ChangePassphrase { .. } => "CHANGE_PASSPHRASE",
            Self::Workspaces => "WORKSPACES",
            Self::RetrieveInConnectionSession { .. } => "RETRIEVE_IN_CONNECTION_SESSION",
            Self::TerminateConnectionSession => "TERMINATE_CONNECTION_SESSION",
        }
    }
}
