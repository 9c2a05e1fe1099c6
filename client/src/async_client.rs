//! [`AsyncClient`]: the same typed calls as [`crate::Client`], on tokio. Each call races
//! the timeout, so an agent that stops answering yields [`Error::Timeout`], never a hang.

use crate::calls::{self, Call, DEFAULT_AGENT_ID, StoreOptions};
use crate::connection::{DEFAULT_TIMEOUT, transport_error};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::socket_path;
use avp_protocol::frame::{self, nonblocking};
use avp_protocol::{
    Cursor, DeleteResult, DiscoverInfo, HistoryResult, Labels, ListPage, Passphrase, Response,
    RotateResult, Secret, SecretMeta, SecretName, SecretValue, StatusInfo, StoreResult,
    WorkspaceId, WorkspacesResult,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// An async connection to the agent. Calls take `&mut self`: one request is in flight at a
/// time, as the protocol requires (every response answers the request before it).
#[derive(Debug)]
pub struct AsyncClient {
    stream: UnixStream,
    socket: PathBuf,
    timeout: Duration,
    agent_version: u32,
    /// Set after a timeout, a cancelled call or a bad frame: the stream may be mid-frame.
    broken: bool,
}

impl AsyncClient {
    /// Connects to the agent at the socket of PROTOCOL.md §2.1 and performs the `Hello`.
    pub async fn connect() -> Result<Self> {
        Self::connect_to(socket_path::default_socket()).await
    }

    /// Connects to the agent listening on `socket`.
    pub async fn connect_to(socket: impl AsRef<Path>) -> Result<Self> {
        Self::connect_with_timeout(socket, DEFAULT_TIMEOUT).await
    }

    /// Connects to `socket`, waiting at most `timeout` for each answer.
    pub async fn connect_with_timeout(socket: impl AsRef<Path>, timeout: Duration) -> Result<Self> {
        let mut client = Self::open(socket.as_ref(), timeout).await?;
        let version = client.run(calls::hello()).await?;
        client.agent_version = calls::check_version(version)?;
        Ok(client)
    }

    /// Connects to `socket` and checks, before the first byte is sent, that it is our own
    /// agent (see `trust`); no `Hello` yet.
    async fn open(socket: &Path, timeout: Duration) -> Result<Self> {
        let socket = socket.to_path_buf();
        let stream = match UnixStream::connect(&socket).await {
            Ok(stream) => stream,
            Err(source) => return Err(Error::NoAgent { socket, source }),
        };
        crate::trust::check(&socket, &stream)?;
        Ok(Self {
            stream,
            socket,
            timeout,
            agent_version: 0,
            broken: false,
        })
    }

    /// Reads `name` (or its retained `version`) from `workspace` in a session of its own,
    /// in one round trip, as [`crate::Client::retrieve_once`] does: `Hello`,
    /// `Authenticate`, RETRIEVE_IN_CONNECTION_SESSION and TERMINATE_CONNECTION_SESSION go
    /// out in one write and are answered in order (PROTOCOL.md §3.5, §6.17). The session
    /// lives only for this call; each answer is awaited at most [`DEFAULT_TIMEOUT`]. The
    /// first refusal is the error: a refused `Authenticate` (e.g. `VAULT_LOCKED`) rather
    /// than the `SESSION_NOT_FOUND` the read then gets.
    pub async fn retrieve_once(
        socket: impl AsRef<Path>,
        workspace: &WorkspaceId,
        agent_id: &str,
        name: &SecretName,
        version: Option<u32>,
    ) -> Result<Secret> {
        let once = calls::RetrieveOnce::new(workspace, agent_id, name, version);
        let mut client = Self::open(socket.as_ref(), DEFAULT_TIMEOUT).await?;
        let (hello, frames) = calls::pipelined(&once.requests())?;
        let version = hello.finish(client.exchange(&frames).await?)?;
        client.agent_version = calls::check_version(version)?;
        let authenticated = client.exchange(&[]).await;
        let retrieved = client.exchange(&[]).await;
        // Read so the session is over before we return.
        let _ = client.exchange(&[]).await;
        once.finish(authenticated, retrieved)
    }

    /// The socket this client is connected to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The agent's protocol version, as its `Hello` answered.
    pub fn agent_protocol_version(&self) -> u32 {
        self.agent_version
    }

    /// Changes how long later calls wait for an answer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    async fn run<T>(&mut self, call: Call<T>) -> Result<T> {
        let frame = frame::encode(&call.request).map_err(Error::Protocol)?;
        let response = self.exchange(&frame).await?;
        call.finish(response)
    }

    /// Writes `frames` (whole frames; none to read the next answer of a pipelined write)
    /// and reads one answer, within the timeout.
    async fn exchange(&mut self, frames: &[u8]) -> Result<Response> {
        if self.broken {
            return Err(Error::Disconnected {
                socket: self.socket.clone(),
            });
        }
        // Until the answer is in, a cancelled future leaves the stream mid-frame.
        self.broken = true;
        let exchange = async {
            if !frames.is_empty() {
                self.stream.write_all(frames).await?;
                self.stream.flush().await?;
            }
            nonblocking::read_message::<Response>(&mut self.stream).await
        };
        let response = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_elapsed) => {
                return Err(Error::Timeout {
                    socket: self.socket.clone(),
                    after: self.timeout,
                });
            }
            Ok(Err(err)) => return Err(transport_error(err, &self.socket, self.timeout)),
            Ok(Ok(None)) => {
                return Err(Error::Disconnected {
                    socket: self.socket.clone(),
                });
            }
            Ok(Ok(Some(response))) => response,
        };
        self.broken = false;
        Ok(response)
    }

    /// What the agent is and can do.
    pub async fn discover(&mut self) -> Result<DiscoverInfo> {
        self.run(calls::discover()).await
    }

    /// Opens a session on `workspace` with the default lifetime.
    pub async fn authenticate(&mut self, workspace: &WorkspaceId) -> Result<Session> {
        self.authenticate_with(workspace, DEFAULT_AGENT_ID, None)
            .await
    }

    /// Opens a session on `workspace` as `agent_id`, asking for `ttl_seconds`.
    pub async fn authenticate_with(
        &mut self,
        workspace: &WorkspaceId,
        agent_id: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<Session> {
        self.run(calls::authenticate(workspace, agent_id, ttl_seconds, false))
            .await
    }

    /// Like [`AsyncClient::authenticate_with`], but on a locked vault asks the agent to
    /// unlock it through its pinentry and waits for the outcome (see
    /// `Client::authenticate_waiting`); waits up to [`crate::UNLOCK_WAIT_TIMEOUT`].
    pub async fn authenticate_waiting(
        &mut self,
        workspace: &WorkspaceId,
        agent_id: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<Session> {
        let timeout = self.timeout;
        self.timeout = timeout.max(calls::UNLOCK_WAIT_TIMEOUT);
        let result = self
            .run(calls::authenticate(workspace, agent_id, ttl_seconds, true))
            .await;
        self.timeout = timeout;
        result
    }

    /// Ends `session` now.
    pub async fn terminate(&mut self, session: Session) -> Result<()> {
        self.run(calls::terminate(&session)).await
    }

    /// Creates `name` or adds a new version of it.
    pub async fn store(
        &mut self,
        session: &Session,
        name: &SecretName,
        value: SecretValue,
        options: StoreOptions,
    ) -> Result<StoreResult> {
        self.run(calls::store(session, name, value, options)?).await
    }

    /// The current value of `name`, or the retained `version`.
    pub async fn retrieve(
        &mut self,
        session: &Session,
        name: &SecretName,
        version: Option<u32>,
    ) -> Result<Secret> {
        self.run(calls::retrieve(session, name, version)).await
    }

    /// Deletes `name` and all its versions.
    pub async fn delete(&mut self, session: &Session, name: &SecretName) -> Result<DeleteResult> {
        self.run(calls::delete(session, name)).await
    }

    /// One page of metadata, sorted by name.
    pub async fn list(
        &mut self,
        session: &Session,
        label_filter: &Labels,
        cursor: Option<Cursor>,
        limit: Option<u32>,
    ) -> Result<ListPage> {
        self.run(calls::list(session, label_filter, cursor, limit))
            .await
    }

    /// Every secret's metadata matching `label_filter`, fetching all pages.
    pub async fn list_all(
        &mut self,
        session: &Session,
        label_filter: &Labels,
    ) -> Result<Vec<SecretMeta>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .list(
                    session,
                    label_filter,
                    cursor.clone(),
                    Some(calls::LIST_ALL_PAGE),
                )
                .await?;
            let next = calls::next_cursor(cursor.as_ref(), &page)?;
            all.extend(page.secrets);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Replaces the value of an existing secret.
    pub async fn rotate(
        &mut self,
        session: &Session,
        name: &SecretName,
        value: SecretValue,
    ) -> Result<RotateResult> {
        self.run(calls::rotate(session, name, value)?).await
    }

    /// The retained versions of `name`.
    pub async fn history(&mut self, session: &Session, name: &SecretName) -> Result<HistoryResult> {
        self.run(calls::history(session, name)).await
    }

    /// Creates the vault and leaves it unlocked.
    pub async fn init(&mut self, passphrase: Passphrase, work_factor: Option<u8>) -> Result<()> {
        self.run(calls::init(passphrase, work_factor)).await
    }

    /// Unlocks the vault.
    pub async fn unlock(&mut self, passphrase: Passphrase) -> Result<()> {
        self.run(calls::unlock(passphrase)).await
    }

    /// Locks the vault, ending every session.
    pub async fn lock(&mut self) -> Result<()> {
        self.run(calls::lock()).await
    }

    /// The agent's state, counters, timers and versions.
    pub async fn status(&mut self) -> Result<StatusInfo> {
        self.run(calls::status()).await
    }

    /// The workspaces holding live secrets, with their counts (no session needed).
    pub async fn workspaces(&mut self) -> Result<WorkspacesResult> {
        self.run(calls::workspaces()).await
    }

    /// Re-wraps the vault under `new`.
    pub async fn change_passphrase(&mut self, old: Passphrase, new: Passphrase) -> Result<()> {
        self.run(calls::change_passphrase(old, new)).await
    }
}
