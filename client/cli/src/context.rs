//! What every command shares: the global flags, validation of names and the workspace
//! before anything is sent, and a connection with a short-lived session.

use crate::cli::Global;
use crate::fail::Failure;
use avp_client::{Client, Labels, SecretName, Session, WorkspaceId, socket_path};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The name the CLI gives itself in the agent's audit log.
const AGENT_ID: &str = concat!("avp-cli/", env!("CARGO_PKG_VERSION"));

/// A session lives at most this long; each command terminates its own when it is done.
const SESSION_TTL_SECONDS: u64 = 600;

/// The global flags, resolved.
#[derive(Debug)]
pub struct Ctx {
    /// The agent's socket (PROTOCOL.md §2.1).
    pub socket: PathBuf,
    /// `-w/--workspace` as given; validated when a command needs it.
    workspace: String,
    /// `--json`.
    pub json: bool,
}

impl Ctx {
    pub fn new(global: Global) -> Self {
        Self {
            socket: socket_path::resolve(global.socket.as_deref()),
            workspace: global.workspace,
            json: global.json,
        }
    }

    /// The workspace, validated (`INVALID_WORKSPACE` before anything is sent).
    pub fn workspace(&self) -> Result<WorkspaceId, Failure> {
        Ok(WorkspaceId::new(self.workspace.clone()).map_err(avp_client::Error::from)?)
    }

    /// Connects and greets the agent.
    pub fn connect(&self) -> Result<Client, Failure> {
        Ok(Client::connect_to(&self.socket)?)
    }

    /// Connects, opens a session on the workspace, runs `f`, and ends the session.
    pub fn with_session<T>(
        &self,
        f: impl FnOnce(&mut Client, &Session) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        self.with_session_in(&self.workspace()?, f)
    }

    /// [`Ctx::with_session`] on another workspace than `-w`'s.
    pub fn with_session_in<T>(
        &self,
        workspace: &WorkspaceId,
        f: impl FnOnce(&mut Client, &Session) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut client = self.connect()?;
        let session = client.authenticate_with(workspace, AGENT_ID, Some(SESSION_TTL_SECONDS))?;
        let result = f(&mut client, &session);
        // The agent would expire it anyway; a failure to end it early changes nothing.
        let _ = client.terminate(session);
        result
    }
}

/// A secret name, validated (`INVALID_NAME` before anything is sent).
pub fn name(text: &str) -> Result<SecretName, Failure> {
    Ok(SecretName::new(text).map_err(avp_client::Error::from)?)
}

/// Labels from `K=V` flags, validated against the protocol's limits.
pub fn labels(pairs: Vec<(String, String)>) -> Result<Labels, Failure> {
    let map: BTreeMap<String, String> = pairs.into_iter().collect();
    Ok(Labels::new(map).map_err(avp_client::Error::from)?)
}
