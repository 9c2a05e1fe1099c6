//! The rough edges a new user found (issue 16), each pinned through the real binaries:
//! status text, `ls` with a label that matches nothing, missing names and versions, empty
//! values, help that matches behaviour, JSON usage errors, local mistakes that are not
//! protocol errors, `passwd` without a vault, and the size cap of `import`.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, init, run, set, text};
use serde_json::Value;

fn stderr_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|err| panic!("{err}: {:?}", text(&out.stderr)))
}

/// Item 3: the text form has the hardening facts `--json` has.
#[test]
fn status_text_shows_the_hardening_facts() {
    let agent = TestAgent::start_initialized();
    let out = run(&agent, &["status"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\nbackend:  available\n"), "{stdout}");
    let hardened = stdout
        .lines()
        .find(|line| line.starts_with("hardened: "))
        .unwrap_or_else(|| panic!("no hardening line: {stdout}"));
    assert!(
        hardened.starts_with("hardened: dumpable no, core limit 0, locked memory "),
        "{hardened}"
    );
    assert!(hardened.ends_with(" allowed"), "{hardened}");
    // The audit log's path, as `--json` gives it.
    let json = run(&agent, &["--json", "status"], b"");
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    let path = doc["audit_log"]
        .as_str()
        .expect("the test agent keeps an audit log");
    assert!(
        stdout.contains(&format!("\naudit:    {path}\n")),
        "{stdout}"
    );
}

/// Item 6: a label filter that matches nothing says so (and how many the workspace holds),
/// not that the workspace is empty; the table shows each secret's expiry.
#[test]
fn ls_names_the_label_that_matched_nothing_and_shows_expiry() {
    let agent = TestAgent::start_initialized();
    for name in ["A", "B", "C"] {
        set(&agent, name, b"x");
    }
    let out = run(&agent, &["ls", "--label", "env=dev"], b"");
    assert_eq!(code(&out), 0);
    assert_eq!(
        text(&out.stderr),
        "no secret in workspace `default` carries env=dev (it holds 3 secret(s))\n"
    );
    assert!(out.stdout.is_empty());

    avp(&agent)
        .args(["set", "T", "-", "--expires-at", "2099-01-31T12:00:00Z"])
        .write_stdin("t")
        .assert()
        .success();
    let table = text(&run(&agent, &["ls"], b"").stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "VERSION", "LABELS", "UPDATED", "EXPIRES"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][4], "-", "{table}");
    assert_eq!(rows[3][0], "T");
    assert_eq!(rows[3][4], "2099-01-31T12:00:00Z", "{table}");
}

/// Item 7: `run --only` names the secret that is missing; a version that is not retained
/// points to `avp history`.
#[test]
fn missing_names_and_versions_are_named() {
    let agent = TestAgent::start_initialized();
    set(&agent, "THERE", b"1");
    let out = run(
        &agent,
        &["run", "--only", "THERE", "--only", "NOPE", "--", "true"],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: no secret `NOPE` in workspace `default` (SECRET_NOT_FOUND) — list the \
         workspace's secrets with `avp ls`\n"
    );
    let out = run(&agent, &["get", "THERE", "--version", "5"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: no version 5 of secret `THERE` in workspace `default` (SECRET_NOT_FOUND) — list \
         its retained versions with `avp history THERE`\n"
    );
}

/// Item 8: an empty value from a pipe, a file, /dev/null or an empty argument is refused
/// without `--allow-empty` and leaves the secret as it was; with the flag it is stored.
#[test]
fn an_empty_value_needs_allow_empty() {
    let agent = TestAgent::start_initialized();
    set(&agent, "K", b"kept");
    let refused = "avp: the value is empty (standard input or the argument held no bytes); \
                   nothing was stored — pass --allow-empty to store an empty value on purpose\n";
    // A cron job: standard input is /dev/null.
    let out = avp(&agent)
        .args(["set", "K"])
        .pipe_stdin("/dev/null")
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert_eq!(text(&out.stderr), refused);
    for args in [
        &["set", "K", "-"][..],
        &["set", "K", ""],
        &["rotate", "K", "-"],
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 1, "{args:?}");
        assert_eq!(text(&out.stderr), refused, "{args:?}");
    }
    assert_eq!(get(&agent, "K"), b"kept");
    let json = run(&agent, &["--json", "set", "K", "-"], b"");
    assert_eq!(stderr_json(&json)["error"]["code"], "INVALID_INPUT");

    avp(&agent)
        .args(["rotate", "K", "-", "--allow-empty"])
        .assert()
        .success();
    assert_eq!(get(&agent, "K"), b"");
    avp(&agent)
        .args(["set", "E", "--allow-empty"])
        .assert()
        .success();
    assert_eq!(get(&agent, "E"), b"");

    // An import's `B=` line is written on purpose, and an empty stream imports nothing:
    // neither can blank a secret by accident.
    avp(&agent)
        .args(["import", "-"])
        .write_stdin("B=\n")
        .assert()
        .success();
    assert_eq!(get(&agent, "B"), b"");
    avp(&agent).args(["import", "-"]).assert().success();
    assert_eq!(get(&agent, "K"), b"");
}

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(avp_tests::avp_bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{args:?}");
    text(&out.stdout)
}

/// Item 9: help says what the commands do.
#[test]
fn help_matches_behaviour() {
    let import = help(&["import"]);
    assert!(!import.contains("all or nothing"), "{import}");
    assert!(
        import.contains("checked before the first write"),
        "{import}"
    );
    for command in ["init", "unlock"] {
        let text = help(&[command]);
        assert!(!text.contains("passwd"), "{command}: {text}");
        assert!(text.contains("Read the passphrase as one line"), "{text}");
    }
    let passwd = help(&["passwd"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        passwd.contains("the current one on the first line, the new one on the second"),
        "{passwd}"
    );
    let run_help = help(&["run"]);
    assert!(
        run_help.contains("Usage: avp run [OPTIONS] -- <CMD> [ARGS]..."),
        "{run_help}"
    );
}

/// Item 9: `-w` is refused where it would be silently ignored; `AVP_WORKSPACE` is not.
#[test]
fn workspace_flag_only_where_it_means_something() {
    let agent = TestAgent::start_initialized();
    for args in [
        &["-w", "dev", "status"][..],
        &["status", "--workspace", "dev"],
        &["lock", "-w", "x"],
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(
            text(&out.stderr).contains("acts on the whole vault, so -w/--workspace means nothing"),
            "{}",
            text(&out.stderr)
        );
    }
    avp(&agent)
        .env("AVP_WORKSPACE", "dev")
        .arg("status")
        .assert()
        .success();
    avp(&agent).args(["-w", "dev", "ls"]).assert().success();
}

/// Item 9: under `--json` an export to standard output is JSON; asking for dotenv there is
/// a usage error.
#[test]
fn json_export_is_json() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    let out = run(&agent, &["--json", "export"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc, serde_json::json!({"A": "1"}));
    let out = run(&agent, &["--json", "export", "--format", "dotenv"], b"");
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty());
    let err = stderr_json(&out);
    assert_eq!(err["error"]["code"], "USAGE");
    assert!(
        err["error"]["message"].as_str().unwrap().starts_with(
            "--json prints JSON on standard output, so it cannot carry a dotenv export"
        ),
        "{err}"
    );
    // Without --json the default is still dotenv.
    assert_eq!(text(&run(&agent, &["export"], b"").stdout), "A='1'\n");
}

/// Item 10: under `--json`, usage errors are the JSON error document (exit 2).
#[test]
fn usage_errors_under_json_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    for args in [
        &["--json", "get"][..],
        &["--json", "nope"],
        &["get", "--json", "--bogus", "A"],
        &["--json", "export", "--format", "yaml"],
    ] {
        let out = avp_tests::cli::avp_at(&socket).args(args).output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(out.stdout.is_empty());
        let err = stderr_json(&out);
        assert_eq!(err["error"]["code"], "USAGE", "{args:?}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains("try '--help'"), "{message}");
        assert_eq!(text(&out.stderr).lines().count(), 1);
    }
    // Without --json, clap's own text; and `-- --json` belongs to the command of `run`.
    let out = avp_tests::cli::avp_at(&socket).arg("get").output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
}

/// Item 11 and the passphrase fixes: a local mistake carries no protocol code; `passwd`
/// with no vault says to run `avp init` before asking for anything.
#[test]
fn local_mistakes_are_not_protocol_errors() {
    let agent = TestAgent::start();
    let out = run(&agent, &["passwd"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: no vault exists yet (VAULT_NOT_INITIALIZED) — run `avp init`\n"
    );
    // The default work factor: no weak-factor warning before the refusal.
    let out = run(&agent, &["init", "--passphrase-stdin"], b"\n");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: the passphrase is empty — choose a non-empty passphrase\n"
    );
    let out = run(&agent, &["--json", "init", "--passphrase-stdin"], b"\n");
    assert_eq!(stderr_json(&out)["error"]["code"], "INVALID_INPUT");
    let out = run(&agent, &["init", "--passphrase-stdin"], b"\xff\n");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: the passphrase is not valid UTF-8 — use a UTF-8 passphrase\n"
    );
    init(&agent);
}

/// `import` from a stream stops reading past 64 MiB and imports nothing; a larger regular
/// file is refused by its size.
#[test]
fn import_has_a_size_cap() {
    let agent = TestAgent::start_initialized();
    let mut big = b"A=1\n".to_vec();
    big.resize(64 * 1024 * 1024 + 1, b'#');
    let out = run(&agent, &["import", "-"], &big);
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: - is larger than 64 MiB, the most `avp import` reads (VALUE_TOO_LARGE) — split \
         it into smaller files and import each; nothing was imported\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.env");
    let handle = std::fs::File::create(&file).unwrap();
    handle.set_len(65 * 1024 * 1024).unwrap();
    let out = run(&agent, &["import", file.to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("is larger than 64 MiB"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        code(&run(&agent, &["get", "A"], b"")),
        1,
        "nothing imported"
    );
    // Exactly at the cap is read (and then parsed).
    big.truncate(64 * 1024 * 1024);
    avp(&agent)
        .args(["import", "-"])
        .write_stdin(big)
        .assert()
        .success();
    assert_eq!(get(&agent, "A"), b"1");
}
