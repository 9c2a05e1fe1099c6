//! The package boundaries the workspace promises, checked so they cannot quietly erode:
//! a program that only wants `get_secret` compiles no CLI crates and no async runtime, and
//! the socket-path rule (PROTOCOL.md §2.1) is written once, in `avp-protocol`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What only the `avp` command line needs (now in `avp-cli`).
const CLI_ONLY: &[&str] = &[
    "clap",
    "clap_complete",
    "rpassword",
    "serde_json",
    "base64",
    "humantime",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("client/ has a parent")
        .to_path_buf()
}

/// The crate names in `cargo tree -p avp-client -e normal` with `extra` arguments.
fn normal_dependencies(extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["tree", "--offline", "--locked", "-p", "avp-client"])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(extra)
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_library_compiles_no_cli_crates_and_no_runtime() {
    let names = normal_dependencies(&[]);
    assert!(names.iter().any(|n| n == "avp-protocol"), "{names:?}");
    for forbidden in CLI_ONLY.iter().chain(&["tokio"]) {
        assert!(
            !names.iter().any(|n| n == forbidden),
            "avp-client depends on {forbidden}; CLI dependencies belong in client/cli \
             (avp-cli) and tokio behind the `async` feature: {names:?}"
        );
    }
}

#[test]
fn the_async_feature_adds_tokio_and_nothing_of_the_cli() {
    let names = normal_dependencies(&["--features", "async"]);
    assert!(names.iter().any(|n| n == "tokio"), "{names:?}");
    for forbidden in CLI_ONLY {
        assert!(
            !names.iter().any(|n| n == forbidden),
            "avp-client with `async` depends on {forbidden}: {names:?}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The agent and both clients take the socket path from `avp_protocol::socket_path`; a
/// second copy of the rule (reading `XDG_RUNTIME_DIR` or naming `agent.sock` itself) would
/// let them drift apart and the client would look where the agent does not listen.
#[test]
fn the_socket_path_rule_is_written_once() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["agent/src", "client/src", "client/cli/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(!files.is_empty());
    let copies: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).expect("read source");
            text.contains("\"XDG_RUNTIME_DIR\"") || text.contains("\"agent.sock\"")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        copies.is_empty(),
        "the socket-path rule belongs only in protocol/src/socket_path.rs; use \
         avp_protocol::socket_path instead in {copies:?}"
    );
    let rule = fs::read_to_string(root.join("protocol/src/socket_path.rs")).expect("the rule");
    assert!(rule.contains("\"XDG_RUNTIME_DIR\"") && rule.contains("\"agent.sock\""));
}
