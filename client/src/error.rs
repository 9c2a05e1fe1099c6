//! The client's one error type. Every variant says what went wrong and, after ` — `, what to
//! do next; [`Error::code`] gives the AVP [`ErrorCode`] where there is one, so programs can
//! branch on it without parsing text. No message ever contains a secret value or a
//! passphrase.

use crate::duration_text::DurationText;
use avp_protocol::{ErrorCode, ErrorResponse, FrameError, ValidationError};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The hint printed whenever no agent answers.
pub const START_AGENT_HINT: &str = "start one with `systemctl --user enable --now avp-agent.socket` \
     or `eval \"$(avp-agent --daemon)\"`";

/// Result alias for every fallible call of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing listens on the socket (no file, or a stale file nobody accepts on).
    #[error("no agent answers on {} ({}) — {START_AGENT_HINT}", socket.display(), connect_reason(source))]
    NoAgent {
        /// The socket that was tried.
        socket: PathBuf,
        /// The connect error.
        #[source]
        source: io::Error,
    },
    /// The agent closed the connection or the connection broke in the middle of a call.
    #[error(
        "the agent on {} closed the connection — check that it is still running (`avp status`); {START_AGENT_HINT}",
        socket.display()
    )]
    Disconnected {
        /// The socket of the agent that went away.
        socket: PathBuf,
    },
    /// The socket is not our own agent's: it is served by another uid, or it lies in a
    /// directory another uid owns or group/other can write. Nothing was sent on it.
    #[error("{} — {}", reason.problem(socket), reason.next_step())]
    UntrustedSocket {
        /// The socket that was refused.
        socket: PathBuf,
        /// Which check failed.
        reason: Untrusted,
    },
    /// The agent did not answer within the client's read timeout.
    #[error(
        "the agent on {} did not answer within {} — check that it is not stopped or hung",
        socket.display(),
        DurationText(*after)
    )]
    Timeout {
        /// The socket of the agent that is not answering.
        socket: PathBuf,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The agent speaks another protocol version.
    #[error(
        "this client speaks AVP protocol version {client} but the agent speaks {} — \
         install matching versions of `avp` and `avp-agent` and restart the agent",
        agent.map_or_else(|| "another version".to_owned(), |v| format!("version {v}"))
    )]
    VersionMismatch {
        /// [`avp_protocol::PROTOCOL_VERSION`] of this client.
        client: u32,
        /// The agent's version, when it said which (`None` if its answer did not name it).
        agent: Option<u32>,
    },
    /// The vault is locked (`VAULT_LOCKED`).
    #[error("vault is locked — run `avp unlock`")]
    VaultLocked,
    /// No vault exists yet (`VAULT_NOT_INITIALIZED`).
    #[error("no vault exists yet — run `avp init`")]
    VaultNotInitialized,
    /// The agent refused the request with another AVP code.
    #[error("{}", agent_text(*code, message))]
    Agent {
        /// The AVP code.
        code: ErrorCode,
        /// The agent's explanation (never contains request bytes).
        message: String,
    },
    /// A name, workspace, label or cursor was rejected before anything was sent.
    #[error("{} — {}", .0.reason, invalid_input_hint(.0.code))]
    Invalid(ValidationError),
    /// A value is larger than the protocol allows; rejected before anything was sent.
    #[error("value of {len} bytes exceeds the limit of {max} bytes — store a smaller value")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The agent's bytes were not a valid frame (too long, cut off, undecodable).
    #[error(
        "the agent sent an invalid frame ({0}) — restart the agent; if it persists, report a bug"
    )]
    Protocol(#[source] FrameError),
    /// The agent answered with a response that does not fit the request.
    #[error(
        "the agent answered {got} to a {expected} request — restart the agent; if it persists, report a bug"
    )]
    UnexpectedResponse {
        /// The request's operation.
        expected: &'static str,
        /// The kind of response that came.
        got: &'static str,
    },
    /// A local I/O failure other than a missing agent (e.g. reading a secrets file).
    #[error("{context}: {source} — check the path and its permissions")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `get_secret` found no secret with that name in its source.
    #[error("no secret named `{name}` in {source_desc} — store it there first")]
    SecretNotFound {
        /// The secret's name (names are not secret).
        name: String,
        /// Which source was searched, e.g. "the environment" or a directory.
        source_desc: String,
    },
    /// `AVP_SOURCE` names no known source.
    #[error("AVP_SOURCE must be `agent`, `env` or `dir` — fix the environment variable")]
    UnknownSource,
    /// `AVP_SOURCE=dir` without `AVP_SECRETS_DIR`.
    #[error(
        "AVP_SOURCE=dir needs AVP_SECRETS_DIR — set it to the directory holding one file per secret"
    )]
    SecretsDirUnset,
}

impl Error {
    /// The AVP error code, where there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::VersionMismatch { .. } => Some(ErrorCode::VersionMismatch),
            Self::VaultLocked => Some(ErrorCode::VaultLocked),
            Self::VaultNotInitialized => Some(ErrorCode::VaultNotInitialized),
            Self::Agent { code, .. } => Some(*code),
            Self::Invalid(err) => Some(err.code),
            Self::ValueTooLarge { .. } => Some(ErrorCode::ValueTooLarge),
            Self::Protocol(_) | Self::UnexpectedResponse { .. } => Some(ErrorCode::ProtocolError),
            Self::SecretNotFound { .. } => Some(ErrorCode::SecretNotFound),
            Self::NoAgent { .. }
            | Self::Disconnected { .. }
            | Self::Timeout { .. }
            | Self::UntrustedSocket { .. }
            | Self::Io { .. }
            | Self::UnknownSource
            | Self::SecretsDirUnset => None,
        }
    }

    /// True when no agent could be reached or it stopped answering: nothing was refused,
    /// the agent is simply not there.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::NoAgent { .. } | Self::Disconnected { .. } | Self::Timeout { .. }
        )
    }

    /// The message split into the problem and the next step (the text after the last
    /// ` — `), for callers that print them apart (the CLI puts the code between them).
    pub fn problem_and_next_step(&self) -> (String, Option<String>) {
        let text = self.to_string();
        match text.rsplit_once(" — ") {
            Some((problem, next)) => (problem.to_owned(), Some(next.to_owned())),
            None => (text, None),
        }
    }

    /// The error an agent's error answer stands for.
    pub(crate) fn from_response(error: ErrorResponse) -> Self {
        match error.code {
            ErrorCode::VaultLocked => Self::VaultLocked,
            ErrorCode::VaultNotInitialized => Self::VaultNotInitialized,
            ErrorCode::VersionMismatch => {
                let client = avp_protocol::PROTOCOL_VERSION;
                Self::VersionMismatch {
                    client,
                    agent: agent_version_in(&error.message, client),
                }
            }
            code => Self::Agent {
                code,
                message: error.message,
            },
        }
    }
}

/// Why a socket is not trusted ([`Error::UntrustedSocket`]). Uids are effective uids.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Untrusted {
    /// The process serving the socket runs as `uid` (from `SO_PEERCRED`), not as us.
    PeerUid {
        /// The peer's uid.
        uid: u32,
        /// Our own uid.
        own: u32,
    },
    /// The socket's directory belongs to `uid`, who could put any socket there.
    DirectoryOwner {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        uid: u32,
        /// Our own uid.
        own: u32,
    },
    /// The socket's directory is writable by group or others, who could replace the socket.
    DirectoryWritable {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl Untrusted {
    fn problem(&self, socket: &std::path::Path) -> String {
        let socket = socket.display();
        match self {
            Self::PeerUid { uid, own } => format!(
                "the socket {socket} is served by uid {uid}, not you (uid {own}): \
                 something may be impersonating the agent"
            ),
            Self::DirectoryOwner { dir, uid, own } => format!(
                "the socket {socket} is in {}, owned by uid {uid}, not you (uid {own}): \
                 something may be impersonating the agent",
                dir.display()
            ),
            Self::DirectoryWritable { dir, mode } => format!(
                "the socket {socket} is in {}, which group or others can write \
                 (mode {mode:04o}): anyone could put a fake agent there",
                dir.display()
            ),
        }
    }

    fn next_step(&self) -> &'static str {
        match self {
            Self::PeerUid { .. } | Self::DirectoryOwner { .. } => {
                "nothing was sent; do not use that socket: set XDG_RUNTIME_DIR or AVP_SOCK \
                 to a directory only you own and start your own agent there"
            }
            Self::DirectoryWritable { .. } => {
                "nothing was sent; make the directory private (`chmod go-w` it) or set \
                 AVP_SOCK to a socket in a directory only you can write"
            }
        }
    }
}

impl From<ValidationError> for Error {
    fn from(err: ValidationError) -> Self {
        Self::Invalid(err)
    }
}

/// The agent's message as `problem — next step`. The agent separates its advice with
/// `: ` or `; ` ("wrong passphrase: try again"); a message without advice gets ours.
fn agent_text(code: ErrorCode, message: &str) -> String {
    let split = [": ", "; "]
        .iter()
        .filter_map(|sep| message.find(sep).map(|at| (at, sep.len())))
        .min();
    match (split, next_step(code)) {
        (Some((at, len)), _) => format!("{} — {}", &message[..at], &message[at + len..]),
        (None, Some(step)) => format!("{message} — {step}"),
        (None, None) => message.to_owned(),
    }
}

/// What to do after the agent refused with `code`, for messages that do not say.
fn next_step(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::AuthenticationFailed => "check the passphrase and try again",
        ErrorCode::SessionExpired | ErrorCode::SessionTerminated | ErrorCode::SessionNotFound => {
            "authenticate again to get a new session"
        }
        ErrorCode::SecretNotFound => "list the workspace's secrets with `avp ls`",
        ErrorCode::PermissionDenied => "an agent serves only its own user; start your own agent",
        ErrorCode::RateLimitExceeded => "wait a moment and try again",
        ErrorCode::BackendUnavailable => "check that the agent's storage backend is reachable",
        ErrorCode::IntegrityError => {
            "the vault file is damaged or not this vault's; restore a backup"
        }
        ErrorCode::ProtocolError => "restart the agent; if it persists, report a bug",
        _ => return None,
    })
}

/// Why a connect failed, in words (without the OS error number).
fn connect_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no socket there".to_owned(),
        io::ErrorKind::ConnectionRefused => "nothing listens on the socket".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

fn invalid_input_hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidName => "fix the secret name",
        ErrorCode::InvalidWorkspace => "fix the workspace id (-w/--workspace or AVP_WORKSPACE)",
        ErrorCode::CapacityExceeded => "use fewer labels",
        _ => "fix the request",
    }
}

/// The agent's protocol version as named in its `VERSION_MISMATCH` message: the first
/// number in the text that is not the client's own version.
fn agent_version_in(message: &str, client: u32) -> Option<u32> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|digits| digits.parse::<u32>().ok())
        .find(|&v| v != client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_and_uninitialized_say_what_to_run() {
        let locked = Error::from_response(ErrorResponse::new(ErrorCode::VaultLocked, "x"));
        assert_eq!(locked.to_string(), "vault is locked — run `avp unlock`");
        assert_eq!(locked.code(), Some(ErrorCode::VaultLocked));
        let (problem, next) = locked.problem_and_next_step();
        assert_eq!(problem, "vault is locked");
        assert_eq!(next.as_deref(), Some("run `avp unlock`"));
        let uninit = Error::from_response(ErrorResponse::new(ErrorCode::VaultNotInitialized, "x"));
        assert!(uninit.to_string().ends_with("run `avp init`"));
    }

    #[test]
    fn no_agent_names_the_socket_and_how_to_start_one() {
        let err = Error::NoAgent {
            socket: PathBuf::from("/run/x.sock"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let text = err.to_string();
        assert!(
            text.starts_with("no agent answers on /run/x.sock (no socket there) — "),
            "{text}"
        );
        assert!(
            text.contains("systemctl --user enable --now avp-agent.socket"),
            "{text}"
        );
        assert!(text.contains("avp-agent --daemon"), "{text}");
        assert!(err.is_unreachable());
        assert_eq!(err.code(), None);
    }

    #[test]
    fn version_mismatch_names_both_versions() {
        let err = Error::VersionMismatch {
            client: 1,
            agent: Some(7),
        };
        let text = err.to_string();
        assert!(
            text.contains("version 1") && text.contains("version 7"),
            "{text}"
        );
        assert_eq!(err.code(), Some(ErrorCode::VersionMismatch));
    }

    #[test]
    fn agent_version_is_found_in_the_message() {
        assert_eq!(
            agent_version_in("client speaks 3, agent speaks 1", 3),
            Some(1)
        );
        assert_eq!(agent_version_in("agent 2 client 1", 1), Some(2));
        assert_eq!(agent_version_in("no numbers", 1), None);
    }

    #[test]
    fn agent_errors_get_a_next_step_unless_they_carry_one() {
        let err = Error::from_response(ErrorResponse::new(
            ErrorCode::AuthenticationFailed,
            "wrong passphrase",
        ));
        assert_eq!(
            err.to_string(),
            "wrong passphrase — check the passphrase and try again"
        );
        let err = Error::from_response(ErrorResponse::new(
            ErrorCode::SecretNotFound,
            "not here: run `avp ls`",
        ));
        assert_eq!(err.to_string(), "not here — run `avp ls`");
        assert_eq!(err.code(), Some(ErrorCode::SecretNotFound));
        let err = Error::from_response(ErrorResponse::new(
            ErrorCode::InvalidRequest,
            "a vault already exists here; unlock it with `avp unlock`",
        ));
        let (problem, next) = err.problem_and_next_step();
        assert_eq!(problem, "a vault already exists here");
        assert_eq!(next.as_deref(), Some("unlock it with `avp unlock`"));
        let err = Error::from_response(ErrorResponse::new(ErrorCode::BackendError, "disk full"));
        assert_eq!(err.to_string(), "disk full");
    }
}
