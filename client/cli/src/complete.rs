//! Dynamic shell completion (`source <(COMPLETE=bash avp)`, README "The avp CLI"): secret
//! names and workspaces come from the agent, asked with a short timeout.
//!
//! Completion runs on every Tab, so it must never get in the way: when the agent is absent,
//! locked, slow or refuses, the candidates are simply empty — nothing is printed on stderr and
//! the exit status stays 0 (clap_complete prints the candidates and exits).

use avp_client::{Client, Labels, WorkspaceId, socket_path};
use clap_complete::CompletionCandidate;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

/// How long a Tab may wait for the agent (per answer) before giving up silently.
const AGENT_TIMEOUT: Duration = Duration::from_millis(500);

/// The session name completion uses in the audit log.
const AGENT_ID: &str = concat!("avp-complete/", env!("CARGO_PKG_VERSION"));

/// The global flags the command line being completed gives (`--socket`, `-w`), read from
/// the words the shell passes after `--`, since a value completer sees only its own word.
#[derive(Debug, Default, PartialEq, Eq)]
struct Typed {
    socket: Option<PathBuf>,
    workspace: Option<String>,
}

fn typed_flags(words: &[OsString]) -> Typed {
    let mut typed = Typed::default();
    let mut words = words.iter().map(|w| w.to_string_lossy().into_owned());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(value) = word.strip_prefix("--socket=") {
            typed.socket = Some(value.into());
        } else if word == "--socket" {
            typed.socket = words.next().map(PathBuf::from);
        } else if let Some(value) = word.strip_prefix("--workspace=") {
            typed.workspace = Some(value.to_owned());
        } else if word == "--workspace" || word == "-w" {
            typed.workspace = words.next();
        } else if let Some(value) = word.strip_prefix("-w").filter(|v| !v.is_empty()) {
            typed.workspace = Some(value.trim_start_matches('=').to_owned());
        }
    }
    typed
}

/// The words being completed: everything after the `--` clap_complete's shell glue puts
/// before them.
fn words_being_completed() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Connects to the agent the typed command line (or the environment) names.
fn connect(typed: &Typed) -> Option<Client> {
    let socket = socket_path::resolve(typed.socket.as_deref());
    Client::connect_with_timeout(socket, AGENT_TIMEOUT).ok()
}

/// The workspace to list: `-w` on the line, else `AVP_WORKSPACE`, else `default`.
fn workspace(typed: &Typed) -> Option<WorkspaceId> {
    let text = typed
        .workspace
        .clone()
        .or_else(|| std::env::var("AVP_WORKSPACE").ok())
        .unwrap_or_else(|| "default".to_owned());
    WorkspaceId::new(text).ok()
}

/// Keeps the candidates that start with what is typed so far.
fn matching(names: impl IntoIterator<Item = String>, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    names
        .into_iter()
        .filter(|name| name.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// The secret names of the selected workspace, or none when the agent cannot say.
fn names_in_workspace(typed: &Typed) -> Option<Vec<String>> {
    let workspace = workspace(typed)?;
    let mut client = connect(typed)?;
    let session = client
        .authenticate_with(&workspace, AGENT_ID, Some(60))
        .ok()?;
    let names = client.list_all(&session, &Labels::empty()).ok();
    let _ = client.terminate(session);
    Some(names?.into_iter().map(|m| m.name.to_string()).collect())
}

/// Completes a secret name (`avp get AP<Tab>`).
pub fn secret_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = typed_flags(&words_being_completed());
    matching(names_in_workspace(&typed).unwrap_or_default(), current)
}

/// The workspaces to offer: those the agent says hold secrets (WORKSPACES), plus
/// `default` and `AVP_WORKSPACE`, which may not hold any yet. Without an answer (no agent,
/// locked) only the last two, so completion stays silent about the vault.
fn known_workspaces(typed: &Typed) -> Vec<String> {
    let mut known = vec!["default".to_owned()];
    if let Ok(env) = std::env::var("AVP_WORKSPACE") {
        known.push(env);
    }
    if let Some(listed) = connect(typed).and_then(|mut client| client.workspaces().ok()) {
        known.extend(
            listed
                .workspaces
                .into_iter()
                .map(|w| w.workspace.to_string()),
        );
    }
    known.sort();
    known.dedup();
    known
}

/// Completes a workspace (`avp -w de<Tab>`).
pub fn workspaces(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = typed_flags(&words_being_completed());
    matching(known_workspaces(&typed), current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_typed_workspace_and_socket_are_found_in_every_spelling() {
        for line in [
            &["avp", "-w", "prod", "get", ""][..],
            &["avp", "--workspace", "prod", "get", ""],
            &["avp", "get", "--workspace=prod", ""],
            &["avp", "-wprod", "get", ""],
        ] {
            assert_eq!(typed_flags(&words(line)).workspace.as_deref(), Some("prod"));
        }
        let typed = typed_flags(&words(&["avp", "--socket=/s", "get", "--", "-w", "x"]));
        assert_eq!(typed.socket, Some(PathBuf::from("/s")));
        assert_eq!(typed.workspace, None, "words after -- are not flags");
    }

    #[test]
    fn only_names_with_the_typed_prefix_are_offered() {
        let got = matching(["API_KEY", "APP", "DB"].map(String::from), OsStr::new("AP"));
        let got: Vec<_> = got
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["API_KEY", "APP"]);
    }
}
