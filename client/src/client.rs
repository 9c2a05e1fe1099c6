//! [`Client`]: the blocking client, one typed method per AVP operation.

use crate::calls::{self, DEFAULT_AGENT_ID, StoreOptions};
use crate::connection::{Connection, DEFAULT_TIMEOUT};
use crate::error::Result;
use crate::session::Session;
use crate::socket_path;
use avp_protocol::{
    Cursor, DeleteResult, DiscoverInfo, HistoryResult, Labels, ListPage, Passphrase, RotateResult,
    Secret, SecretMeta, SecretName, SecretValue, StatusInfo, StoreResult, WorkspaceId,
    WorkspacesResult,
};
use std::path::Path;
use std::time::Duration;

/// A blocking connection to the agent. Every call sends one request and waits (at most the
/// timeout, [`DEFAULT_TIMEOUT`] unless changed) for its answer.
///
/// ```no_run
/// use avp_client::{Client, SecretName, WorkspaceId};
/// let mut client = Client::connect()?;
/// let session = client.authenticate(&WorkspaceId::default_workspace())?;
/// let secret = client.retrieve(&session, &SecretName::new("DB_PASSWORD")?, None)?;
/// # let _ = secret;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    conn: Connection,
}

impl Client {
    /// Connects to the agent at the socket of PROTOCOL.md §2.1 (`AVP_SOCK`, else the default)
    /// and performs the `Hello` exchange.
    pub fn connect() -> Result<Self> {
        Self::connect_to(socket_path::default_socket())
    }

    /// Connects to the agent listening on `socket`.
    pub fn connect_to(socket: impl AsRef<Path>) -> Result<Self> {
        Self::connect_with_timeout(socket, DEFAULT_TIMEOUT)
    }

    /// Connects to `socket`, waiting at most `timeout` for each answer (the greeting
    /// included).
    pub fn connect_with_timeout(socket: impl AsRef<Path>, timeout: Duration) -> Result<Self> {
        Ok(Self {
            conn: Connection::open(socket.as_ref(), timeout)?,
        })
    }

    /// Reads `name` (or its retained `version`) from `workspace` in a session of its own,
    /// in one round trip: `Hello`, `Authenticate`, RETRIEVE_IN_CONNECTION_SESSION and
    /// TERMINATE_CONNECTION_SESSION go out in one write and are answered in order
    /// (PROTOCOL.md §3.5, §6.17). The session lives only for this call. The first refusal
    /// is the error: a refused `Authenticate` (e.g. `VAULT_LOCKED`) rather than the
    /// `SESSION_NOT_FOUND` the read then gets.
    pub fn retrieve_once(
        socket: impl AsRef<Path>,
        workspace: &WorkspaceId,
        agent_id: &str,
        name: &SecretName,
        version: Option<u32>,
    ) -> Result<Secret> {
        let once = calls::RetrieveOnce::new(workspace, agent_id, name, version);
        let mut conn =
            Connection::open_pipelined(socket.as_ref(), DEFAULT_TIMEOUT, &once.requests())?;
        let authenticated = conn.read_answer();
        let retrieved = conn.read_answer();
        // Read so the session is over before we return.
        let _ = conn.read_answer();
        once.finish(authenticated, retrieved)
    }

    /// The socket this client is connected to.
    pub fn socket(&self) -> &Path {
        self.conn.socket()
    }

    /// The agent's protocol version, as its `Hello` answered (always ours: a mismatch
    /// fails the connect).
    pub fn agent_protocol_version(&self) -> u32 {
        self.conn.agent_version()
    }

    /// Changes how long later calls wait for an answer.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.conn.set_timeout(timeout)
    }

    /// What the agent is and can do (needs no session, works while locked).
    pub fn discover(&mut self) -> Result<DiscoverInfo> {
        self.conn.run(calls::discover())
    }

    /// Opens a session on `workspace` with the default lifetime.
    pub fn authenticate(&mut self, workspace: &WorkspaceId) -> Result<Session> {
        self.authenticate_with(workspace, DEFAULT_AGENT_ID, None)
    }

    /// Opens a session on `workspace`, naming the caller `agent_id` in the audit log and
    /// asking for `ttl_seconds` (`None` or 0: the agent's default; above the maximum:
    /// clamped).
    pub fn authenticate_with(
        &mut self,
        workspace: &WorkspaceId,
        agent_id: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<Session> {
        self.conn
            .run(calls::authenticate(workspace, agent_id, ttl_seconds, false))
    }

    /// Like [`Client::authenticate_with`], but on a locked vault asks the agent to unlock it
    /// through its pinentry (`avp-agent --pinentry`) and waits for the outcome: the
    /// session once the user has typed the passphrase, `VAULT_LOCKED` when they cancel, when
    /// the agent's wait runs out (60 s by default) or when the agent has no pinentry. For
    /// programs without a terminal; the plain calls (and [`crate::get_secret`]) never wait
    /// and never open a prompt. This call waits up to [`UNLOCK_WAIT_TIMEOUT`] for the
    /// answer, then goes back to the client's timeout.
    ///
    /// [`UNLOCK_WAIT_TIMEOUT`]: crate::UNLOCK_WAIT_TIMEOUT
    pub fn authenticate_waiting(
        &mut self,
        workspace: &WorkspaceId,
        agent_id: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<Session> {
        let timeout = self.conn.timeout();
        self.conn
            .set_timeout(timeout.max(calls::UNLOCK_WAIT_TIMEOUT))?;
        let result = self
            .conn
            .run(calls::authenticate(workspace, agent_id, ttl_seconds, true));
        // The connection is broken after a transport error anyway; on success the
        // next calls get the usual timeout back.
        let restored = self.conn.set_timeout(timeout);
        let session = result?;
        restored?;
        Ok(session)
    }

    /// Ends `session` now.
    pub fn terminate(&mut self, session: Session) -> Result<()> {
        self.conn.run(calls::terminate(&session))
    }

    /// Creates `name` or adds a new version of it. Values over the limit are refused with
    /// `VALUE_TOO_LARGE` before anything is sent.
    pub fn store(
        &mut self,
        session: &Session,
        name: &SecretName,
        value: SecretValue,
        options: StoreOptions,
    ) -> Result<StoreResult> {
        self.conn.run(calls::store(session, name, value, options)?)
    }

    /// The current value of `name`, or the retained `version`.
    pub fn retrieve(
        &mut self,
        session: &Session,
        name: &SecretName,
        version: Option<u32>,
    ) -> Result<Secret> {
        self.conn.run(calls::retrieve(session, name, version))
    }

    /// Deletes `name` and all its versions; `deleted: false` if it did not exist.
    pub fn delete(&mut self, session: &Session, name: &SecretName) -> Result<DeleteResult> {
        self.conn.run(calls::delete(session, name))
    }

    /// One page of metadata (never values), sorted by name.
    pub fn list(
        &mut self,
        session: &Session,
        label_filter: &Labels,
        cursor: Option<Cursor>,
        limit: Option<u32>,
    ) -> Result<ListPage> {
        self.conn
            .run(calls::list(session, label_filter, cursor, limit))
    }

    /// Every secret's metadata matching `label_filter`, fetching all pages.
    pub fn list_all(
        &mut self,
        session: &Session,
        label_filter: &Labels,
    ) -> Result<Vec<SecretMeta>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list(
                session,
                label_filter,
                cursor.clone(),
                Some(calls::LIST_ALL_PAGE),
            )?;
            let next = calls::next_cursor(cursor.as_ref(), &page)?;
            all.extend(page.secrets);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Replaces the value of an existing secret, keeping its labels and expiry.
    pub fn rotate(
        &mut self,
        session: &Session,
        name: &SecretName,
        value: SecretValue,
    ) -> Result<RotateResult> {
        self.conn.run(calls::rotate(session, name, value)?)
    }

    /// The retained versions of `name` (numbers and times, never values).
    pub fn history(&mut self, session: &Session, name: &SecretName) -> Result<HistoryResult> {
        self.conn.run(calls::history(session, name))
    }

    /// Creates the vault with `passphrase` (scrypt `work_factor` = log2 N, 10–22; `None`
    /// for the agent's default) and leaves it unlocked.
    pub fn init(&mut self, passphrase: Passphrase, work_factor: Option<u8>) -> Result<()> {
        self.conn.run(calls::init(passphrase, work_factor))
    }

    /// Unlocks the vault (succeeds too when it already is unlocked).
    pub fn unlock(&mut self, passphrase: Passphrase) -> Result<()> {
        self.conn.run(calls::unlock(passphrase))
    }

    /// Locks the vault, ending every session.
    pub fn lock(&mut self) -> Result<()> {
        self.conn.run(calls::lock())
    }

    /// The agent's state, counters, timers and versions.
    pub fn status(&mut self) -> Result<StatusInfo> {
        self.conn.run(calls::status())
    }

    /// The workspaces holding live secrets, with their counts (no session needed).
    pub fn workspaces(&mut self) -> Result<WorkspacesResult> {
        self.conn.run(calls::workspaces())
    }

    /// Re-wraps the vault under `new`.
    pub fn change_passphrase(&mut self, old: Passphrase, new: Passphrase) -> Result<()> {
        self.conn.run(calls::change_passphrase(old, new))
    }
}
