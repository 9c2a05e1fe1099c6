//! `avp cp`, `avp mv` (within and across workspaces) and `avp restore`.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, get_in, run, set, set_in, text};
use serde_json::Value;

fn json_get(agent: &TestAgent, workspace: &str, name: &str) -> Value {
    let out = run(agent, &["--json", "-w", workspace, "get", name], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn exists(agent: &TestAgent, workspace: &str, name: &str) -> bool {
    code(&run(agent, &["-w", workspace, "get", name], b"")) == 0
}

#[test]
fn cp_copies_value_labels_and_expiry_within_and_across_workspaces() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args([
            "set",
            "DB",
            "-",
            "--label",
            "env=prod",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ])
        .write_stdin(b"\x00bin\xff".to_vec())
        .assert()
        .success();
    avp(&agent)
        .args(["cp", "DB", "DB_COPY"])
        .assert()
        .success()
        .stdout("copied default:DB to default:DB_COPY: version 1\n");
    avp(&agent)
        .args(["cp", "DB", "team/prod:"])
        .assert()
        .success()
        .stdout("copied default:DB to team/prod:DB: version 1\n");
    for (workspace, name) in [("default", "DB_COPY"), ("team/prod", "DB")] {
        assert_eq!(get_in(&agent, workspace, name), b"\x00bin\xff");
        let doc = json_get(&agent, workspace, name);
        assert_eq!(doc["labels"], serde_json::json!({"env": "prod"}));
        assert_eq!(doc["expires_at"], "2099-01-01T00:00:00Z");
    }
    assert!(exists(&agent, "default", "DB"), "cp keeps the source");

    // -w names the workspace of a bare NAME on either side.
    avp(&agent)
        .args(["-w", "team/prod", "cp", "DB", "default:FROM_PROD"])
        .assert()
        .success();
    assert_eq!(get(&agent, "FROM_PROD"), b"\x00bin\xff");
}

#[test]
fn cp_refuses_an_existing_destination_unless_forced() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"new");
    set(&agent, "B", b"old");
    let out = run(&agent, &["cp", "A", "B"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: default:B already exists (INVALID_REQUEST) — pass --force to replace its value \
         (the old one stays in `avp history`)\n"
    );
    assert_eq!(get(&agent, "B"), b"old");
    avp(&agent)
        .args(["cp", "--force", "A", "B"])
        .assert()
        .success();
    assert_eq!(get(&agent, "B"), b"new");
    assert_eq!(
        run(&agent, &["get", "B", "--version", "1"], b"").stdout,
        b"old"
    );
}

#[test]
fn mv_stores_the_destination_then_deletes_the_source() {
    let agent = TestAgent::start_initialized();
    set(&agent, "TOKEN", b"t0k3n");
    let out = run(&agent, &["--json", "mv", "TOKEN", "staging:API_TOKEN"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        doc,
        serde_json::json!({
            "from": {"workspace": "default", "name": "TOKEN"},
            "to": {"workspace": "staging", "name": "API_TOKEN"},
            "version": 1, "created": true, "moved": true,
        })
    );
    assert!(!exists(&agent, "default", "TOKEN"));
    assert_eq!(get_in(&agent, "staging", "API_TOKEN"), b"t0k3n");

    // A refused destination leaves the source where it was.
    set(&agent, "KEEP", b"k");
    set_in(&agent, "staging", "KEEP", b"there");
    let out = run(&agent, &["mv", "KEEP", "staging:"], b"");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert_eq!(get(&agent, "KEEP"), b"k");
    assert_eq!(get_in(&agent, "staging", "KEEP"), b"there");
    avp(&agent)
        .args(["mv", "-f", "KEEP", "staging:"])
        .assert()
        .success()
        .stdout("moved default:KEEP to staging:KEEP: version 2\n");
    assert!(!exists(&agent, "default", "KEEP"));
}

#[test]
fn cp_and_mv_errors_name_the_problem() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"1");
    let missing = run(&agent, &["mv", "NOPE", "B"], b"");
    assert_eq!(code(&missing), 1);
    assert_eq!(
        text(&missing.stderr),
        "avp: no secret `NOPE` in workspace `default` (SECRET_NOT_FOUND) — list the workspace's \
         secrets with `avp -w default ls`\n"
    );
    let same = run(&agent, &["mv", "A", "default:A"], b"");
    assert_eq!(code(&same), 2);
    assert!(text(&same.stderr).contains("default:A is both the source and the destination"));
    let bad = run(&agent, &["cp", "A", "team//prod:A"], b"");
    assert_eq!(code(&bad), 1);
    assert!(
        text(&bad.stderr).contains("(INVALID_WORKSPACE)"),
        "{}",
        text(&bad.stderr)
    );
    let bad = run(&agent, &["cp", "A", "1abc"], b"");
    assert!(
        text(&bad.stderr).contains("(INVALID_NAME)"),
        "{}",
        text(&bad.stderr)
    );
    let json = run(&agent, &["--json", "cp", "NOPE", "B"], b"");
    let doc: Value = serde_json::from_slice(&json.stderr).expect("JSON error");
    assert_eq!(doc["error"]["code"], "SECRET_NOT_FOUND");
}

#[test]
fn restore_stores_an_old_value_as_a_new_version() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args(["set", "KEY", "good", "--label", "team=a"])
        .assert()
        .success();
    set(&agent, "KEY", b"bad");
    avp(&agent)
        .args(["restore", "KEY", "--version", "1"])
        .assert()
        .success()
        .stdout("restored KEY in workspace default: version 3 holds the value of version 1\n");
    assert_eq!(get(&agent, "KEY"), b"good");
    assert_eq!(
        run(&agent, &["get", "KEY", "--version", "2"], b"").stdout,
        b"bad",
        "the bad version stays in the history"
    );
    assert_eq!(json_get(&agent, "default", "KEY")["labels"]["team"], "a");

    let out = run(&agent, &["--json", "restore", "KEY", "--version", "2"], b"");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["restored_version"], 2);
    assert_eq!(doc["previous_version"], 3);
    assert_eq!(doc["new_version"], 4);
    assert_eq!(get(&agent, "KEY"), b"bad");
}

#[test]
fn restore_of_a_version_not_retained_points_to_history() {
    let agent = TestAgent::start_initialized();
    set(&agent, "KEY", b"v");
    let out = run(&agent, &["restore", "KEY", "--version", "7"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: no version 7 of secret `KEY` in workspace `default` (SECRET_NOT_FOUND) — list its \
         retained versions with `avp history KEY`\n"
    );
    assert_eq!(
        code(&run(&agent, &["restore", "KEY"], b"")),
        2,
        "--version is required"
    );
    assert_eq!(get(&agent, "KEY"), b"v");
}
