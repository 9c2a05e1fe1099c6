//! `run`: exec a command with the workspace's secrets in its environment.
//!
//! avp replaces itself with the command (`execvp`), so the command's exit status, signals
//! and terminal are its own. Values travel only in the environment, never in argv. A
//! secret whose name is not a valid environment variable name (`.` and `-` are allowed in
//! secret names) or whose value contains a NUL byte is skipped with a warning. Non-UTF-8
//! values are passed as their raw bytes. The session is ended before the exec.
//!
//! Variables that change what code the command loads (`LD_PRELOAD`, `PATH`…, the list is in
//! [`crate::code_env`]) are skipped with a warning unless named with `--only`.
//!
//! Every descriptor avp opens is close-on-exec (std opens them all with `O_CLOEXEC` /
//! `SOCK_CLOEXEC`, and the connection is closed before the exec anyway): the command
//! inherits only what avp itself inherited.

use crate::cli::RunArgs;
use crate::code_env;
use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::output;
use avp_client::{Labels, SecretName, SecretValue};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Exit status when the command cannot be executed (as in POSIX shells).
const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit status when the command is not found (as in POSIX shells).
const EXIT_NOT_FOUND: u8 = 127;

/// `[A-Za-z_][A-Za-z0-9_]*`: what POSIX shells accept as a variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn fetch(ctx: &Ctx, only: &[SecretName]) -> Result<Vec<(SecretName, SecretValue)>, Failure> {
    ctx.with_session(|client, session| {
        let names: Vec<SecretName> = if only.is_empty() {
            client
                .list_all(session, &Labels::empty())?
                .into_iter()
                .map(|meta| meta.name)
                .collect()
        } else {
            only.to_vec()
        };
        let workspace = ctx.workspace()?;
        let mut secrets = Vec::with_capacity(names.len());
        for name in names {
            let secret = client
                .retrieve(session, &name, None)
                .map_err(|err| crate::secrets::name_missing(err, &name, &workspace, ""))?;
            secrets.push((name, secret.value));
        }
        Ok(secrets)
    })
}

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<(), Failure> {
    let only = args
        .only
        .iter()
        .map(|name| context::name(name))
        .collect::<Result<Vec<_>, _>>()?;
    let secrets = fetch(ctx, &only)?;
    let mut argv = args.command.into_iter();
    let program = argv.next().unwrap_or_default();
    let mut command = Command::new(&program);
    command.args(argv);
    for (name, value) in &secrets {
        if !is_env_name(name.as_str()) {
            output::warn(&format!(
                "skipping {name}: not a valid environment variable name"
            ));
            continue;
        }
        if only.is_empty() && code_env::changes_loaded_code(name.as_str()) {
            output::warn(&format!(
                "skipping {name}: it changes what code the command loads; \
                 pass it with `--only {name}` if you mean it"
            ));
            continue;
        }
        if value.expose_secret().contains(&0) {
            output::warn(&format!(
                "skipping {name}: its value contains a NUL byte, which an environment cannot hold"
            ));
            continue;
        }
        command.env(
            name.as_str(),
            OsString::from_vec(value.expose_secret().to_vec()),
        );
    }
    drop(secrets);
    // Only returns on failure.
    let err = command.exec();
    let status = match err.kind() {
        io::ErrorKind::NotFound => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXECUTE,
    };
    output::note(&format!(
        "avp: cannot run {}: {err}",
        program.to_string_lossy()
    ));
    Err(Failure::Exit(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_posix() {
        for ok in ["A", "a_b", "_x", "DB_PASSWORD2"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "a.b", "a-b", "é"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
