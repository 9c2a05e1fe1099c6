//! The `avp` CLI's error paths: exact exit codes (1 refused, 2 usage, 3 no agent,
//! 4 locked) and one-line messages with the AVP code and the next step.

use avp_tests::TestAgent;
use avp_tests::cli::{
    assert_unlock_checks_the_passphrase_when_unlocked, avp, avp_at, code, get, passphrase_line,
    run, set, text,
};
use std::path::Path;

const NO_AGENT_HINT: &str = "start one with `systemctl --user enable --now avp-agent.socket` or `eval \"$(avp-agent --daemon)\"`";

#[test]
fn no_agent_exits_3_with_the_command_that_starts_one() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody.sock");
    for args in [
        &["status"][..],
        &["discover"],
        &["lock"],
        &["get", "A"],
        &["set", "A", "x"],
        &["ls"],
        &["rm", "A"],
        &["run", "--", "true"],
        &["export"],
    ] {
        let out = avp_at(&socket).args(args).output().unwrap();
        assert_eq!(code(&out), 3, "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "avp: no agent answers on {} (no socket there) — ",
                socket.display()
            )),
            "{stderr}"
        );
        assert!(stderr.trim_end().ends_with(NO_AGENT_HINT), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_stale_socket_file_is_no_agent_too() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let out = avp_at(&socket).arg("status").output().unwrap();
    assert_eq!(code(&out), 3);
    assert!(
        text(&out.stderr).starts_with(&format!(
            "avp: no agent answers on {} (nothing listens on the socket) — ",
            socket.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_socket_flag_beats_the_environment() {
    let agent = TestAgent::start_initialized();
    avp_at(Path::new("/nonexistent/avp.sock"))
        .args(["--socket", agent.socket.to_str().unwrap(), "status"])
        .assert()
        .success();
    avp(&agent)
        .args(["--socket", "/nonexistent/avp.sock", "status"])
        .assert()
        .code(3);
}

#[test]
fn a_locked_vault_exits_4_with_avp_unlock() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"x");
    avp(&agent).arg("lock").assert().success();
    for args in [
        &["get", "A"][..],
        &["set", "B", "y"],
        &["ls"],
        &["rm", "A"],
        &["rotate", "A", "z"],
        &["history", "A"],
        &["export"],
        &["run", "--", "true"],
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 4, "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "avp: vault is locked (VAULT_LOCKED) — run `avp unlock`\n",
            "{args:?}"
        );
    }
}

#[test]
fn an_uninitialized_vault_says_to_run_init() {
    let agent = TestAgent::start();
    let out = run(
        &agent,
        &["unlock", "--passphrase-stdin"],
        &passphrase_line(),
    );
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: no vault exists yet (VAULT_NOT_INITIALIZED) — run `avp init`\n"
    );
    assert_eq!(code(&run(&agent, &["get", "A"], b"")), 1);
    // Without a terminal, too: the missing vault, not how to give a passphrase.
    let out = run(&agent, &["unlock"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: no vault exists yet (VAULT_NOT_INITIALIZED) — run `avp init`\n"
    );
}

#[test]
fn init_twice_is_refused() {
    let agent = TestAgent::start_initialized();
    let out = run(
        &agent,
        &["init", "--passphrase-stdin", "--work-factor", "10"],
        &passphrase_line(),
    );
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("a vault already exists"), "{stderr}");
    assert!(stderr.contains("(INVALID_REQUEST)"), "{stderr}");
}

#[test]
fn a_wrong_passphrase_is_refused_with_authentication_failed() {
    let agent = TestAgent::start_initialized();
    avp(&agent).arg("lock").assert().success();
    let out = run(&agent, &["unlock", "--passphrase-stdin"], b"MARKER-guess\n");
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("avp: wrong passphrase (AUTHENTICATION_FAILED) — "),
        "{stderr}"
    );
    assert!(
        !stderr.contains("MARKER"),
        "the passphrase is never echoed: {stderr}"
    );
}

#[test]
fn unlock_of_an_unlocked_vault_checks_the_passphrase() {
    let agent = TestAgent::start_initialized();
    assert_unlock_checks_the_passphrase_when_unlocked(&agent);
}

#[test]
fn passphrases_need_a_terminal_or_passphrase_stdin() {
    let agent = TestAgent::start();
    // `unlock` and `passwd` need a vault to get as far as asking (with none they say to
    // run init).
    let initialized = TestAgent::start_initialized();
    for (agent, args) in [
        (&agent, &["init"][..]),
        (&initialized, &["unlock"]),
        (&initialized, &["passwd"]),
    ] {
        let out = run(agent, args, b"");
        assert_eq!(code(&out), 2, "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "avp: standard input is not a terminal, so avp cannot prompt — pass --passphrase-stdin and give the passphrase on standard input\n"
        );
    }
    let out = run(&agent, &["init", "--passphrase-stdin"], b"");
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("no passphrase on standard input"));
    let out = run(
        &agent,
        &["init", "--passphrase-stdin", "--work-factor", "10"],
        b"\n",
    );
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("the passphrase is empty — "));
}

#[test]
fn usage_errors_exit_2() {
    let agent = TestAgent::start_initialized();
    for args in [
        &["--no-such-flag", "status"][..],
        &["status", "--bogus"],
        &["frobnicate"],
        &[],
        &["get"],
        &["set"],
        &["rm"],
        &["history"],
        &["import"],
        &["run"],
        &["init", "--work-factor", "9"],
        &["init", "--work-factor", "23"],
        &["set", "A", "x", "--label", "novalue"],
        &["set", "A", "x", "--expires-in", "soon"],
        &[
            "set",
            "A",
            "x",
            "--expires-in",
            "1h",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
        &["set", "A", "x", "--no-expiry", "--expires-in", "1h"],
        &[
            "set",
            "A",
            "x",
            "--no-expiry",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
        &["rotate", "A", "x", "--generate"],
        &["rotate", "A", "--length", "5"],
        &["rotate", "A", "--generate", "--length", "0"],
        &["export", "--format", "yaml"],
        &["completions", "tcsh"],
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        // clap's own text, or avp's for what clap cannot check (see `generate.rs`).
        assert!(
            stderr.starts_with("error: ")
                || stderr.contains("Usage: avp")
                || stderr.starts_with("avp: --length goes with --generate — "),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = run(&agent, &["set", "A", "x", "--expires-at", "yesterday"], b"");
    assert_eq!(code(&out), 2);
}

/// `--expires-in 0` used to be sent as "now + 1 s": the update succeeded and a second
/// later the secret and every version of it were gone. An expiry that is not in the
/// future is refused before anything is sent, and the secret keeps its versions.
#[test]
fn an_expiry_not_in_the_future_is_refused_and_the_secret_is_kept() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    set(&agent, "A", b"2");
    let next_step = "give a time in the future, or remove the expiry with --no-expiry";
    for (args, problem) in [
        (
            &["set", "A", "3", "--expires-in", "0"][..],
            "--expires-in must be at least 1s: the secret would expire at once",
        ),
        (
            &["set", "A", "3", "--expires-in", "500ms"],
            "--expires-in must be at least 1s: the secret would expire at once",
        ),
        (
            &["set", "A", "3", "--expires-at", "2001-01-01T00:00:00Z"],
            "--expires-at is in the past",
        ),
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!("avp: {problem} (INVALID_REQUEST) — {next_step}\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty());
    }
    let history = run(&agent, &["--json", "history", "A"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(doc["versions"].as_array().unwrap().len(), 2);
    assert_eq!(get(&agent, "A"), b"2");
}

#[test]
fn invalid_names_are_refused_before_anything_is_sent() {
    // No agent at all: exit 1 (not 3) proves nothing was sent.
    let nowhere = Path::new("/nonexistent/avp.sock");
    for args in [
        &["get", "1BAD"][..],
        &["set", "bad name", "x"],
        &["set", "trailing\n", "x"],
        &["rm", "_x"],
        &["rotate", "ünï", "x"],
        &["history", "a/b"],
        &["run", "--only", "9", "--", "true"],
    ] {
        let out = avp_at(nowhere).args(args).output().unwrap();
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("(INVALID_NAME) — fix the secret name"),
            "{stderr}"
        );
        assert!(stderr.starts_with("avp: a secret name "), "{stderr}");
    }
    let out = avp_at(nowhere)
        .args(["-w", "a/../b", "ls"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("(INVALID_WORKSPACE)"));
}

#[test]
fn oversized_values_are_refused_before_anything_is_sent() {
    let nowhere = Path::new("/nonexistent/avp.sock");
    let big = vec![b'x'; 65_537];
    let out = avp_at(nowhere)
        .args(["set", "BIG", "-"])
        .write_stdin(big.clone())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: value of 65537 bytes exceeds the limit of 65536 bytes (VALUE_TOO_LARGE) — store a smaller value\n"
    );
    let out = avp_at(nowhere)
        .args(["rotate", "BIG"])
        .write_stdin(big)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("(VALUE_TOO_LARGE)"));
    let out = avp_at(nowhere)
        .args(["rotate", "BIG", "--generate", "--length", "65537"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "the length flag is bounded by clap");
}

#[test]
fn missing_secrets_name_the_secret_and_workspace() {
    let agent = TestAgent::start_initialized();
    set(&agent, "THERE", b"x");
    for (args, line) in [
        (
            &["get", "NOPE"][..],
            "no secret `NOPE` in workspace `default`",
        ),
        (&["rm", "NOPE"], "no secret `NOPE` in workspace `default`"),
        (
            &["rotate", "NOPE", "x"],
            "no secret `NOPE` in workspace `default`",
        ),
        (
            &["history", "NOPE"],
            "no secret `NOPE` in workspace `default`",
        ),
        // A missing version points to `avp history` instead: `edges::missing_names_and_versions_are_named`.
        (
            &["-w", "other", "get", "THERE"],
            "no secret `THERE` in workspace `other`",
        ),
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 1, "{args:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "avp: {line} (SECRET_NOT_FOUND) — list the workspace's secrets with `avp ls`\n"
            )
        );
    }
}

#[test]
fn an_agent_that_dies_exits_3() {
    let mut agent = TestAgent::start_initialized();
    set(&agent, "A", b"x");
    agent.kill();
    let out = run(&agent, &["get", "A"], b"");
    assert_eq!(code(&out), 3);
    assert!(text(&out.stderr).contains(NO_AGENT_HINT));
}

#[test]
fn json_errors_go_to_stderr_as_one_document() {
    let agent = TestAgent::start_initialized();
    let out = run(&agent, &["--json", "get", "NOPE"], b"");
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(doc["error"]["code"], "SECRET_NOT_FOUND");
    assert_eq!(
        doc["error"]["message"],
        "no secret `NOPE` in workspace `default` — list the workspace's secrets with `avp ls`"
    );
    avp(&agent).arg("lock").assert().success();
    let out = run(&agent, &["--json", "ls"], b"");
    assert_eq!(code(&out), 4);
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(doc["error"]["code"], "VAULT_LOCKED");
    assert_eq!(
        doc["error"]["message"],
        "vault is locked — run `avp unlock`"
    );
    let out = avp_at(Path::new("/nonexistent/avp.sock"))
        .args(["--json", "status"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3);
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(doc["error"]["code"], "NO_AGENT");
    let out = avp_at(Path::new("/nonexistent/avp.sock"))
        .args(["--json", "get", "1"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(doc["error"]["code"], "INVALID_NAME");
}

#[test]
fn passwd_refuses_a_wrong_current_passphrase_and_an_empty_new_one() {
    let agent = TestAgent::start_initialized();
    let out = run(
        &agent,
        &["passwd", "--passphrase-stdin"],
        b"MARKER-wrong\nnew\n",
    );
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(AUTHENTICATION_FAILED)"), "{stderr}");
    assert!(!stderr.contains("MARKER"), "{stderr}");
    let lines = format!("{}\n\n", avp_tests::TEST_PASSPHRASE);
    let out = run(&agent, &["passwd", "--passphrase-stdin"], lines.as_bytes());
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: the passphrase is empty — choose a non-empty passphrase\n"
    );
    let out = run(
        &agent,
        &["passwd", "--passphrase-stdin"],
        &passphrase_line(),
    );
    assert_eq!(code(&out), 2, "the new passphrase line is missing");
    assert_eq!(
        text(&out.stderr),
        "avp: no new passphrase on standard input — give one line per passphrase on standard input\n"
    );
    // The passphrase is unchanged after all that.
    avp(&agent).arg("lock").assert().success();
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success();
}
