//! Why a command failed, and the exit code and one-line message each failure gets
//! (README "The avp CLI"): 1 refused, 2 usage, 3 no agent, 4 locked, 5 the socket is not ours.

use avp_client::{Error, ErrorCode};
use std::io;

/// Exit code: the agent (or avp, before sending) refused.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: no agent answers on the socket.
pub const EXIT_NO_AGENT: u8 = 3;
/// Exit code: the vault is locked.
pub const EXIT_LOCKED: u8 = 4;
/// Exit code: the socket is served by another uid or lies in a directory others control;
/// nothing was sent on it.
pub const EXIT_UNTRUSTED: u8 = 5;
/// Exit code after a write to a closed pipe, as if killed by SIGPIPE (128 + 13).
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// The client library failed: the agent refused, is absent, or the input was invalid.
    Client(Error),
    /// avp itself refused the input before anything was sent.
    Refused {
        /// The AVP code that best names the problem.
        code: ErrorCode,
        /// What is wrong.
        problem: String,
        /// What to do next.
        next: String,
    },
    /// The command line cannot work as given (exit 2).
    Usage {
        /// What is wrong.
        problem: String,
        /// What to do next.
        next: String,
    },
    /// The user's own input is unusable (two entries differ, an empty passphrase or value):
    /// a local mistake, not a protocol error, so it carries no AVP code (JSON code
    /// `INVALID_INPUT`, exit 1).
    Input {
        /// What is wrong.
        problem: String,
        /// What to do next.
        next: String,
    },
    /// A local file or stream failed.
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// avp was stopped by a signal, after cleaning up (`avp edit` on SIGTERM/SIGHUP): the
    /// line is the problem alone, the JSON code `INTERRUPTED`, the exit status 128 + signal.
    Interrupted {
        /// What was stopped and what was done about it.
        problem: String,
        /// The exit status.
        status: u8,
    },
    /// End quietly with this status (a child's status, or a closed stdout pipe).
    Exit(u8),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Client(err)
    }
}

impl Failure {
    /// A refusal by avp itself.
    pub fn refused(code: ErrorCode, problem: impl Into<String>, next: impl Into<String>) -> Self {
        Self::Refused {
            code,
            problem: problem.into(),
            next: next.into(),
        }
    }

    /// A usage error.
    pub fn usage(problem: impl Into<String>, next: impl Into<String>) -> Self {
        Self::Usage {
            problem: problem.into(),
            next: next.into(),
        }
    }

    /// A local input mistake.
    pub fn input(problem: impl Into<String>, next: impl Into<String>) -> Self {
        Self::Input {
            problem: problem.into(),
            next: next.into(),
        }
    }

    /// A usage error found by clap, for the JSON error document: its first paragraph (the
    /// problem, without the `error: ` prefix) and the rest (the usage line and the pointer
    /// to `--help`) as the next step.
    pub fn usage_from_clap(err: &clap::Error) -> Self {
        let rendered = err.render().to_string();
        let mut paragraphs = rendered
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty());
        let problem = paragraphs.next().unwrap_or_default();
        let problem = problem.trim_start_matches("error: ").to_owned();
        let next: Vec<String> = paragraphs.collect();
        let next = if next.is_empty() {
            "see `avp --help`".to_owned()
        } else {
            next.join("; ")
        };
        Self::usage(problem, next)
    }

    /// A local I/O failure; a closed stdout pipe ends quietly instead.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::BrokenPipe {
            return Self::Exit(EXIT_BROKEN_PIPE);
        }
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(err) if err.is_unreachable() => EXIT_NO_AGENT,
            Self::Client(Error::VaultLocked) => EXIT_LOCKED,
            Self::Client(Error::UntrustedSocket { .. }) => EXIT_UNTRUSTED,
            Self::Client(_) | Self::Refused { .. } | Self::Input { .. } | Self::Io { .. } => {
                EXIT_REFUSED
            }
            Self::Usage { .. } => EXIT_USAGE,
            Self::Interrupted { status, .. } => *status,
            Self::Exit(code) => *code,
        }
    }

    /// The code on the error line: the AVP code, or avp's own for failures that have none
    /// (`NO_AGENT`, `UNTRUSTED_SOCKET`, `USAGE`, `INVALID_INPUT`, `IO_ERROR`,
    /// `INTERRUPTED`). `None` for a quiet exit.
    pub fn code(&self) -> Option<String> {
        match self {
            Self::Client(err) => Some(match err.code() {
                Some(code) => code.as_str().to_owned(),
                None if err.is_unreachable() => "NO_AGENT".to_owned(),
                None if matches!(err, Error::UntrustedSocket { .. }) => {
                    "UNTRUSTED_SOCKET".to_owned()
                }
                None => "IO_ERROR".to_owned(),
            }),
            Self::Refused { code, .. } => Some(code.as_str().to_owned()),
            Self::Usage { .. } => Some("USAGE".to_owned()),
            Self::Input { .. } => Some("INVALID_INPUT".to_owned()),
            Self::Io { .. } => Some("IO_ERROR".to_owned()),
            Self::Interrupted { .. } => Some("INTERRUPTED".to_owned()),
            Self::Exit(_) => None,
        }
    }

    /// The problem and the next step, for the one-line message.
    pub fn problem_and_next_step(&self) -> (String, Option<String>) {
        match self {
            Self::Client(err) => err.problem_and_next_step(),
            Self::Refused { problem, next, .. }
            | Self::Usage { problem, next }
            | Self::Input { problem, next } => (problem.clone(), Some(next.clone())),
            Self::Io { context, source } => (
                format!("{context}: {source}"),
                Some("check the path and its permissions".to_owned()),
            ),
            Self::Interrupted { problem, .. } => (problem.clone(), None),
            Self::Exit(_) => (String::new(), None),
        }
    }

    /// The AVP code, for failures that have one.
    fn avp_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Client(err) => err.code(),
            Self::Refused { code, .. } => Some(*code),
            Self::Usage { .. }
            | Self::Input { .. }
            | Self::Io { .. }
            | Self::Interrupted { .. }
            | Self::Exit(_) => None,
        }
    }

    /// The one-line message: `problem (AVP_CODE) — next step`; avp's own codes
    /// (`NO_AGENT`, `UNTRUSTED_SOCKET`, `USAGE`, `INVALID_INPUT`, `IO_ERROR`, `INTERRUPTED`)
    /// appear only in the JSON form.
    pub fn line(&self) -> String {
        let (problem, next) = self.problem_and_next_step();
        let mut line = problem;
        if let Some(code) = self.avp_code() {
            line.push_str(&format!(" ({code})"));
        }
        if let Some(next) = next {
            line.push_str(" — ");
            line.push_str(&next);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn exit_codes_follow_the_readme() {
        let no_agent = Failure::from(Error::NoAgent {
            socket: PathBuf::from("/nowhere"),
            source: io::Error::from(io::ErrorKind::NotFound),
        });
        assert_eq!(no_agent.exit_code(), 3);
        assert_eq!(no_agent.code().as_deref(), Some("NO_AGENT"));
        assert_eq!(Failure::from(Error::VaultLocked).exit_code(), 4);
        let refused = Failure::from(Error::Agent {
            code: ErrorCode::SecretNotFound,
            message: "gone".into(),
        });
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(Failure::usage("x", "y").exit_code(), 2);
        let untrusted = Failure::from(Error::UntrustedSocket {
            socket: PathBuf::from("/tmp/avp-1000/agent.sock"),
            reason: avp_client::Untrusted::PeerUid {
                uid: 1002,
                own: 1000,
            },
        });
        assert_eq!(untrusted.exit_code(), 5);
        assert_eq!(untrusted.code().as_deref(), Some("UNTRUSTED_SOCKET"));
        assert_eq!(Failure::Exit(7).exit_code(), 7);
    }

    #[test]
    fn the_line_has_problem_code_and_next_step() {
        assert_eq!(
            Failure::from(Error::VaultLocked).line(),
            "vault is locked (VAULT_LOCKED) — run `avp unlock`"
        );
        assert_eq!(
            Failure::refused(ErrorCode::InvalidRequest, "bad", "fix it").line(),
            "bad (INVALID_REQUEST) — fix it"
        );
        let mistake = Failure::input("the two passphrases differ", "run the command again");
        assert_eq!(
            mistake.line(),
            "the two passphrases differ — run the command again"
        );
        assert_eq!(mistake.code().as_deref(), Some("INVALID_INPUT"));
        assert_eq!(mistake.exit_code(), 1);
    }
}
