//! The `avp` CLI's success paths against a real agent: exact output and exit code 0.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, get_in, passphrase_line, run, set, set_in, text};

#[test]
fn init_creates_an_unlocked_vault_and_warns_about_a_weak_work_factor() {
    let agent = TestAgent::start();
    avp(&agent)
        .args(["init", "--passphrase-stdin", "--work-factor", "10"])
        .write_stdin(passphrase_line())
        .assert()
        .success()
        .stdout("vault created and unlocked\n")
        .stderr("avp: warning: work factor 10 is weak: use at least 15 for a real vault\n");
    let status = run(&agent, &["status"], b"");
    assert_eq!(code(&status), 0);
    assert!(
        text(&status.stdout).starts_with("vault:    unlocked (vault, "),
        "{}",
        text(&status.stdout)
    );
}

#[test]
fn lock_then_unlock_from_stdin() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    avp(&agent)
        .arg("lock")
        .assert()
        .success()
        .stdout("vault locked\n");
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success()
        .stdout("vault unlocked\n");
    // Unlocking an unlocked vault is not an error.
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success();
    assert_eq!(get(&agent, "A"), b"1");
}

#[test]
fn passwd_changes_the_passphrase() {
    let agent = TestAgent::start_initialized();
    let lines = format!("{}\nnew passphrase\n", avp_tests::TEST_PASSPHRASE);
    avp(&agent)
        .args(["passwd", "--passphrase-stdin"])
        .write_stdin(lines)
        .assert()
        .success()
        .stdout("passphrase changed\n");
    avp(&agent).arg("lock").assert().success();
    let old = run(
        &agent,
        &["unlock", "--passphrase-stdin"],
        &passphrase_line(),
    );
    assert_eq!(code(&old), 1, "{}", text(&old.stderr));
    assert!(text(&old.stderr).contains("(AUTHENTICATION_FAILED)"));
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin("new passphrase\n")
        .assert()
        .success();
}

#[test]
fn set_creates_then_updates() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "API_KEY", "v1"])
        .assert()
        .success()
        .stdout("created API_KEY in workspace default: version 1\n");
    avp(&agent)
        .args(["set", "API_KEY", "-"])
        .write_stdin("v2")
        .assert()
        .success()
        .stdout("updated API_KEY in workspace default: version 2\n");
    assert_eq!(get(&agent, "API_KEY"), b"v2");
    avp(&agent)
        .args(["get", "API_KEY", "--version", "1"])
        .assert()
        .success()
        .stdout("v1");
}

#[test]
fn get_prints_exact_bytes() {
    let agent = TestAgent::start_initialized();
    let binary: Vec<u8> = (0..=255u8).rev().chain([0, 0, b'\n']).collect();
    set(&agent, "BINARY", &binary);
    assert_eq!(get(&agent, "BINARY"), binary);
    set(&agent, "TRAILING", b"line\n");
    assert_eq!(get(&agent, "TRAILING"), b"line\n");
    set(&agent, "EMPTY", b"");
    assert_eq!(get(&agent, "EMPTY"), b"");
    let max = vec![b'x'; 65_536];
    set(&agent, "MAX", &max);
    assert_eq!(get(&agent, "MAX"), max);
}

#[test]
fn ls_prints_a_table_and_filters_by_label() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["ls"])
        .assert()
        .success()
        .stdout("")
        .stderr("no secrets in workspace `default`\n");
    avp(&agent)
        .args([
            "set",
            "B_DB",
            "hunter2-db",
            "--label",
            "env=prod",
            "--label",
            "team=db",
        ])
        .assert()
        .success();
    avp(&agent)
        .args(["set", "A_WEB", "hunter2-web", "--label", "env=dev"])
        .assert()
        .success();
    set(&agent, "C_PLAIN", b"hunter2-plain");
    let out = run(&agent, &["ls"], b"");
    assert_eq!(code(&out), 0);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    let columns = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        columns(lines[0]),
        ["NAME", "VERSION", "LABELS", "UPDATED", "EXPIRES"]
    );
    assert_eq!(columns(lines[1])[..3], ["A_WEB", "1", "env=dev"]);
    assert_eq!(columns(lines[2])[..3], ["B_DB", "1", "env=prod,team=db"]);
    assert_eq!(columns(lines[3])[..3], ["C_PLAIN", "1", "-"]);
    assert!(columns(lines[1])[3].ends_with('Z'));
    assert!(
        !table.contains("hunter2"),
        "values are never listed: {table}"
    );
    let out = run(&agent, &["ls", "--label", "env=prod"], b"");
    let names: Vec<String> = text(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| columns(l)[0].clone())
        .collect();
    assert_eq!(names, ["B_DB"]);
}

#[test]
fn labels_are_kept_unless_replaced_or_cleared() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "K", "1", "--label", "a=b"])
        .assert()
        .success();
    avp(&agent).args(["set", "K", "2"]).assert().success();
    let listed = text(&run(&agent, &["ls"], b"").stdout);
    assert!(listed.contains("a=b"), "{listed}");
    avp(&agent)
        .args(["set", "K", "3", "--clear-labels"])
        .assert()
        .success();
    let listed = text(&run(&agent, &["ls"], b"").stdout);
    assert!(!listed.contains("a=b"), "{listed}");
}

#[test]
fn rm_deletes_and_force_tolerates_missing() {
    let agent = TestAgent::start_initialized();
    set(&agent, "GONE", b"x");
    avp(&agent)
        .args(["rm", "GONE"])
        .assert()
        .success()
        .stdout("deleted GONE from workspace default\n");
    avp(&agent)
        .args(["rm", "-f", "GONE"])
        .assert()
        .success()
        .stdout("GONE did not exist in workspace default\n");
    avp(&agent).args(["get", "GONE"]).assert().code(1);
}

#[test]
fn rotate_with_a_value_and_with_a_generated_one() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "TOKEN", "old", "--label", "kind=api"])
        .assert()
        .success();
    avp(&agent)
        .args(["rotate", "TOKEN", "new"])
        .assert()
        .success()
        .stdout("rotated TOKEN in workspace default: version 1 → 2\n");
    assert_eq!(get(&agent, "TOKEN"), b"new");
    // A generated value is never printed by rotate itself.
    let out = run(
        &agent,
        &["rotate", "TOKEN", "--generate", "--length", "40"],
        b"",
    );
    assert_eq!(code(&out), 0);
    assert_eq!(
        text(&out.stdout),
        "rotated TOKEN in workspace default: version 2 → 3\n"
    );
    let generated = get(&agent, "TOKEN");
    assert_eq!(generated.len(), 40);
    assert!(generated.iter().all(u8::is_ascii_alphanumeric));
    assert!(!text(&out.stdout).contains(&text(&generated)));
    let default_len = run(&agent, &["rotate", "TOKEN", "--generate"], b"");
    assert_eq!(code(&default_len), 0);
    assert_eq!(get(&agent, "TOKEN").len(), 32);
    // Rotation keeps the labels.
    assert!(text(&run(&agent, &["ls"], b"").stdout).contains("kind=api"));
}

#[test]
fn history_lists_retained_versions() {
    let agent = TestAgent::start_initialized();
    for value in [&b"1"[..], b"2", b"3"] {
        set(&agent, "H", value);
    }
    let out = run(&agent, &["history", "H"], b"");
    assert_eq!(code(&out), 0);
    let listing = text(&out.stdout);
    let versions: Vec<&str> = listing
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        listing
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["VERSION", "CREATED"]
    );
    assert_eq!(versions, ["1", "2", "3"]);
}

#[test]
fn workspaces_are_separate_and_come_from_the_flag_or_the_environment() {
    let agent = TestAgent::start_initialized();
    set_in(&agent, "team/app", "DB", b"team");
    set(&agent, "DB", b"default");
    assert_eq!(get_in(&agent, "team/app", "DB"), b"team");
    assert_eq!(get(&agent, "DB"), b"default");
    avp(&agent)
        .env("AVP_WORKSPACE", "team/app")
        .args(["get", "DB"])
        .assert()
        .success()
        .stdout("team");
    // `team` and `team/app` are unrelated.
    avp(&agent)
        .args(["-w", "team", "get", "DB"])
        .assert()
        .code(1);
}

#[test]
fn expiry_flags_set_expires_at() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "TEMP", "x", "--expires-in", "1h"])
        .assert()
        .success();
    avp(&agent)
        .args(["set", "LATER", "y", "--expires-at", "2099-01-01T00:00:00Z"])
        .assert()
        .success();
    let out = run(&agent, &["--json", "ls"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["secrets"][0]["name"], "LATER");
    assert_eq!(doc["secrets"][0]["expires_at"], "2099-01-01T00:00:00Z");
    assert!(
        doc["secrets"][1]["expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[test]
fn status_and_discover_summarise_the_agent() {
    let agent = TestAgent::start_initialized();
    let out = run(&agent, &["status"], b"");
    assert_eq!(code(&out), 0);
    let status = text(&out.stdout);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        status.contains(&format!("client:   avp {version} (protocol 2)")),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "agent:    avp-agent {version} (protocol 2, pid {})",
            agent.pid()
        )),
        "{status}"
    );
    assert!(status.contains("secrets:  0 in 0 workspace(s)"), "{status}");
    let out = run(&agent, &["discover"], b"");
    assert_eq!(code(&out), 0);
    let discover = text(&out.stdout);
    assert!(discover.contains("conformance full"), "{discover}");
    assert!(
        discover.contains("limits:       value 65536 bytes"),
        "{discover}"
    );
}

#[test]
fn completions_are_generated_without_an_agent() {
    for shell in ["bash", "zsh", "fish"] {
        let out = avp_tests::cli::avp_at(std::path::Path::new("/nonexistent/avp.sock"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{shell}");
        assert!(text(&out.stdout).contains("avp"), "{shell}");
    }
}

#[test]
fn no_expiry_removes_the_expiry_of_a_piped_value() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "TEMP", "x", "--expires-in", "1h"])
        .assert()
        .success();
    avp(&agent)
        .args(["set", "TEMP", "-", "--no-expiry"])
        .write_stdin(b"y".to_vec())
        .assert()
        .success()
        .stdout("updated TEMP in workspace default: version 2\n");
    let out = run(&agent, &["--json", "get", "TEMP"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&doc["value"], &doc["version"]), (&"y".into(), &2.into()));
    assert_eq!(doc["expires_at"], serde_json::Value::Null);
    // Without an expiry flag the (now absent) expiry stays absent.
    set(&agent, "TEMP", b"z");
    let out = run(&agent, &["--json", "get", "TEMP"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["expires_at"], serde_json::Value::Null);
}
