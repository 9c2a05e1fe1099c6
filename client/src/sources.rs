//! Where an application's secrets come from, chosen by the environment so the same code
//! runs on a developer machine with the agent and in a container without one.
//!
//! [`get_secret`] reads `AVP_SOURCE`:
//! - `agent` (the default): the agent on the socket of PROTOCOL.md §2.1, in the workspace named
//!   by `AVP_WORKSPACE` (default `default`);
//! - `env`: the environment variable of the secret's name;
//! - `dir`: the file of the secret's name in `AVP_SECRETS_DIR` (mounted container secrets).
//!
//! Values come back exactly as stored: a file's trailing newline, if any, is part of its
//! value. A secret that is not there is an error ([`Error::SecretNotFound`] or the agent's
//! `SECRET_NOT_FOUND`), never an empty value.

use crate::client::Client;
use crate::error::{Error, Result};
use avp_protocol::{ErrorCode, SecretName, SecretValue, WorkspaceId};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Selects the source: `agent`, `env` or `dir`.
pub const SOURCE_ENV: &str = "AVP_SOURCE";
/// The workspace the agent source reads from.
pub const WORKSPACE_ENV: &str = "AVP_WORKSPACE";
/// The directory the `dir` source reads from.
pub const SECRETS_DIR_ENV: &str = "AVP_SECRETS_DIR";

/// A place secrets can be read from by name.
pub trait SecretsBackend {
    /// The current value of `name`; a missing secret is an error, never an empty value.
    fn get(&self, name: &SecretName) -> Result<SecretValue>;

    /// A short description for messages, e.g. "the environment".
    fn describe(&self) -> String;
}

/// Reads secrets from the agent, one short session per call.
#[derive(Debug, Clone)]
pub struct AgentSource {
    /// `None`: the socket of PROTOCOL.md §2.1.
    pub socket: Option<PathBuf>,
    /// The workspace to read from.
    pub workspace: WorkspaceId,
}

impl SecretsBackend for AgentSource {
    fn get(&self, name: &SecretName) -> Result<SecretValue> {
        let mut client = match &self.socket {
            Some(socket) => Client::connect_to(socket)?,
            None => Client::connect()?,
        };
        let session = client.authenticate(&self.workspace)?;
        let result = client.retrieve(&session, name, None);
        // Best effort: the session would expire anyway, and the value is what matters.
        let _ = client.terminate(session);
        match result {
            Ok(secret) => Ok(secret.value),
            Err(Error::Agent {
                code: ErrorCode::SecretNotFound,
                ..
            }) => Err(Error::SecretNotFound {
                name: name.to_string(),
                source_desc: self.describe(),
            }),
            Err(err) => Err(err),
        }
    }

    fn describe(&self) -> String {
        format!("workspace `{}` of the agent", self.workspace)
    }
}

/// Reads the environment variable named like the secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSource;

impl SecretsBackend for EnvSource {
    fn get(&self, name: &SecretName) -> Result<SecretValue> {
        match std::env::var_os(name.as_str()) {
            Some(value) => Ok(SecretValue::from_vec(value.into_vec())),
            None => Err(Error::SecretNotFound {
                name: name.to_string(),
                source_desc: self.describe(),
            }),
        }
    }

    fn describe(&self) -> String {
        "the environment".to_owned()
    }
}

/// Reads the file named like the secret in a directory. Secret names cannot contain `/`
/// and do not start with `.`, so a name never leaves the directory.
#[derive(Debug, Clone)]
pub struct DirSource {
    /// The directory holding one file per secret.
    pub dir: PathBuf,
}

impl SecretsBackend for DirSource {
    fn get(&self, name: &SecretName) -> Result<SecretValue> {
        let path = self.dir.join(name.as_str());
        match std::fs::read(&path) {
            Ok(bytes) => Ok(SecretValue::from_vec(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(Error::SecretNotFound {
                name: name.to_string(),
                source_desc: self.describe(),
            }),
            Err(source) => Err(Error::Io {
                context: format!("cannot read {}", path.display()),
                source,
            }),
        }
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}

/// The source the process environment selects.
pub fn source_from_env() -> Result<Box<dyn SecretsBackend>> {
    source_from(|key| std::env::var_os(key))
}

/// The source selected by an environment lookup (testable without the real environment).
pub fn source_from(var: impl Fn(&str) -> Option<OsString>) -> Result<Box<dyn SecretsBackend>> {
    let kind = var(SOURCE_ENV).filter(|v| !v.is_empty());
    match kind.as_ref().map(|v| v.to_str()) {
        None | Some(Some("agent")) => {
            let workspace = match var(WORKSPACE_ENV).filter(|v| !v.is_empty()) {
                None => WorkspaceId::default_workspace(),
                Some(ws) => WorkspaceId::new(ws.to_string_lossy().into_owned())?,
            };
            let socket = var(crate::socket_path::SOCKET_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
            Ok(Box::new(AgentSource { socket, workspace }))
        }
        Some(Some("env")) => Ok(Box::new(EnvSource)),
        Some(Some("dir")) => match var(SECRETS_DIR_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => Ok(Box::new(DirSource {
                dir: Path::new(&dir).to_path_buf(),
            })),
            None => Err(Error::SecretsDirUnset),
        },
        Some(_) => Err(Error::UnknownSource),
    }
}

/// Fetches the secret `name` from the source `AVP_SOURCE` selects (the agent by default).
/// On a locked vault it fails at once with `VAULT_LOCKED`: it never waits for an unlock
/// (a program that wants the agent's pinentry uses `Client::authenticate_waiting`).
///
/// ```no_run
/// let password = avp_client::get_secret("DB_PASSWORD")?;
/// # let _ = password.expose_secret();
/// # Ok::<(), avp_client::Error>(())
/// ```
pub fn get_secret(name: &str) -> Result<SecretValue> {
    let name = SecretName::new(name)?;
    source_from_env()?.get(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_agent_is_the_default_source() {
        let source = source_from(vars(&[])).unwrap();
        assert_eq!(source.describe(), "workspace `default` of the agent");
        let source = source_from(vars(&[
            ("AVP_SOURCE", "agent"),
            ("AVP_WORKSPACE", "team/x"),
        ]))
        .unwrap();
        assert_eq!(source.describe(), "workspace `team/x` of the agent");
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        assert!(matches!(
            source_from(vars(&[("AVP_SOURCE", "vault")])),
            Err(Error::UnknownSource)
        ));
        assert!(matches!(
            source_from(vars(&[("AVP_SOURCE", "dir")])),
            Err(Error::SecretsDirUnset)
        ));
        let err = source_from(vars(&[("AVP_WORKSPACE", "a/../b")]))
            .err()
            .unwrap();
        assert_eq!(err.code(), Some(ErrorCode::InvalidWorkspace));
    }

    #[test]
    fn dir_source_reads_exact_bytes_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("TOKEN"), b"abc\n\xff").unwrap();
        let source = source_from(vars(&[
            ("AVP_SOURCE", "dir"),
            ("AVP_SECRETS_DIR", dir.path().to_str().unwrap()),
        ]))
        .unwrap();
        let value = source.get(&SecretName::new("TOKEN").unwrap()).unwrap();
        assert_eq!(value.expose_secret(), b"abc\n\xff");
        let err = source
            .get(&SecretName::new("MISSING").unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::SecretNotFound { ref name, .. } if name == "MISSING"));
        assert_eq!(err.code(), Some(ErrorCode::SecretNotFound));
    }

    #[test]
    fn invalid_names_are_refused_before_any_lookup() {
        let err = get_secret("../etc/passwd").unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidName));
    }
}
