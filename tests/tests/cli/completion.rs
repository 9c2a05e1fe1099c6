//! Dynamic completion: `avp` run as bash's completion function runs it (`COMPLETE=bash`, the
//! words after `--`, the index of the word being completed) offers the agent's secret names
//! for the selected workspace, and stays silent (no output, exit 0) when the vault is locked
//! or no agent answers. `avp completions SHELL` keeps working.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, avp_at, code, set, set_in, text};
use std::collections::BTreeSet;
use std::process::Output;

/// Asks for the candidates of the last word of `words` (the command line, `avp` first) the
/// way the registration script `COMPLETE=bash avp` prints does.
fn complete(mut command: assert_cmd::Command, words: &[&str]) -> Output {
    command
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .arg("--")
        .args(words)
        .output()
        .unwrap()
}

fn candidates(out: &Output) -> BTreeSet<String> {
    assert_eq!(code(out), 0, "{}", text(&out.stderr));
    text(&out.stdout)
        .split(['\n', '\u{b}'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn secret_names_complete_from_the_selected_workspace() {
    let agent = TestAgent::start_initialized();
    for name in ["API_KEY", "APP_SECRET", "DB_URL"] {
        set(&agent, name, b"v");
    }
    set_in(&agent, "prod", "API_PROD", b"v");

    let got = candidates(&complete(avp(&agent), &["avp", "get", "AP"]));
    assert_eq!(got, set_of(&["API_KEY", "APP_SECRET"]));
    // An empty word: every name of the workspace (clap adds the flags).
    let mut got = candidates(&complete(avp(&agent), &["avp", "-w", "prod", "get", ""]));
    got.retain(|c| !c.starts_with('-'));
    assert_eq!(got, set_of(&["API_PROD"]));
    let got = candidates(&complete(avp(&agent), &["avp", "run", "--only", "D"]));
    assert_eq!(got, set_of(&["DB_URL"]));
    let got = candidates(&complete(
        avp(&agent),
        &["avp", "rm", "--workspace=prod", "A"],
    ));
    assert_eq!(got, set_of(&["API_PROD"]));
    // Subcommands still complete; workspaces are the default one and those the agent
    // lists (WORKSPACES).
    assert!(candidates(&complete(avp(&agent), &["avp", "ge"])).contains("get"));
    assert!(candidates(&complete(avp(&agent), &["avp", "-w", "de"])).contains("default"));
    assert_eq!(
        candidates(&complete(avp(&agent), &["avp", "-w", "pr"])),
        set_of(&["prod"])
    );
}

#[test]
fn completion_is_silent_when_locked_or_without_an_agent() {
    let agent = TestAgent::start_initialized();
    set(&agent, "API_KEY", b"v");
    avp(&agent).arg("lock").assert().success();
    let out = complete(avp(&agent), &["avp", "get", "AP"]);
    assert_eq!(code(&out), 0);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let nowhere = agent.dir.path().join("no-agent.sock");
    let out = complete(avp_at(&nowhere), &["avp", "get", "AP"]);
    assert_eq!(code(&out), 0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn the_registration_script_and_static_completions_still_print() {
    let agent = TestAgent::start();
    let out = avp(&agent).env("COMPLETE", "bash").output().unwrap();
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).contains("complete -o nospace"),
        "{}",
        text(&out.stdout)
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = avp(&agent).args(["completions", shell]).output().unwrap();
        assert_eq!(code(&out), 0, "{shell}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("doctor"), "{shell}");
    }
}
