//! What every command shares: the global flags, validation of names and the workspace
//! before anything is sent, and a connection with a short-lived session.

use crate::cli::Global;
use crate::fail::Failure;
use crate::unlock_prompt;
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
    /// `-w/--workspace` (or `AVP_WORKSPACE`) as given; validated when a command needs it.
    workspace: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `--no-prompt` / `AVP_NO_PROMPT`: a locked vault is an error, never a prompt.
    no_prompt: bool,
}

impl Ctx {
    pub fn new(global: Global) -> Self {
        Self {
            socket: socket_path::resolve(global.socket.as_deref()),
            workspace: global.workspace,
            json: global.json,
            no_prompt: global.no_prompt,
        }
    }

    /// The workspace, validated (`INVALID_WORKSPACE` before anything is sent); `default`
    /// unless one was given.
    pub fn workspace(&self) -> Result<WorkspaceId, Failure> {
        match self.given_workspace()? {
            Some(workspace) => Ok(workspace),
            None => Ok(WorkspaceId::default_workspace()),
        }
    }

    /// The workspace if one was given (`-w` or `AVP_WORKSPACE`), validated: `avp audit`
    /// shows every workspace unless asked for one.
    pub fn given_workspace(&self) -> Result<Option<WorkspaceId>, Failure> {
        self.workspace
            .clone()
            .map(|text| Ok(WorkspaceId::new(text).map_err(avp_client::Error::from)?))
            .transpose()
    }

    /// Connects and greets the agent.
    pub fn connect(&self) -> Result<Client, Failure> {
        Ok(Client::connect_to(&self.socket)?)
    }

    /// Opens a short-lived session on `workspace` (the caller terminates it); on a locked
    /// vault, first unlocks at the terminal if there is one and prompts are allowed
    /// (`unlock_prompt`), else fails with `VAULT_LOCKED` (exit 4). Commands that use more
    /// than one session, such as `cp` across workspaces, call it directly.
    pub fn open_session(
        &self,
        client: &mut Client,
        workspace: &WorkspaceId,
    ) -> Result<Session, Failure> {
        match client.authenticate_with(workspace, AGENT_ID, Some(SESSION_TTL_SECONDS)) {
            Err(avp_client::Error::VaultLocked) => {}
            other => return Ok(other?),
        }
        if !self.unlock_at_terminal(client)? {
            return Err(avp_client::Error::VaultLocked.into());
        }
        Ok(client.authenticate_with(workspace, AGENT_ID, Some(SESSION_TTL_SECONDS))?)
    }

    /// The terminal to ask for the passphrase on, when there is one and prompts are
    /// allowed; `None` means a locked vault is reported as `VAULT_LOCKED` (exit 4).
    fn prompt_terminal(&self) -> Option<std::fs::File> {
        if self.no_prompt {
            None
        } else {
            unlock_prompt::terminal()
        }
    }

    /// Asks for the passphrase on the terminal and unlocks; `false` when there is no
    /// terminal to ask on (see [`Ctx::prompt_terminal`]).
    fn unlock_at_terminal(&self, client: &mut Client) -> Result<bool, Failure> {
        let Some(tty) = self.prompt_terminal() else {
            return Ok(false);
        };
        unlock_prompt::unlock_on_terminal(&self.socket, client, tty)?;
        Ok(true)
    }

    /// Reads one secret in a session of its own, in one round trip (see
    /// [`Client::retrieve_once`]). On a locked vault it unlocks at the terminal as
    /// [`Ctx::open_session`] does, then reads again; only the first read is pipelined.
    pub fn retrieve_once(
        &self,
        workspace: &WorkspaceId,
        name: &SecretName,
        version: Option<u32>,
    ) -> Result<Result<avp_client::Secret, avp_client::Error>, Failure> {
        let read = || Client::retrieve_once(&self.socket, workspace, AGENT_ID, name, version);
        match read() {
            Err(avp_client::Error::VaultLocked) => match self.prompt_terminal() {
                Some(tty) => {
                    let mut client = self.connect()?;
                    unlock_prompt::unlock_on_terminal(&self.socket, &mut client, tty)?;
                    Ok(read())
                }
                None => Ok(Err(avp_client::Error::VaultLocked)),
            },
            other => Ok(other),
        }
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
        let session = self.open_session(&mut client, workspace)?;
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
