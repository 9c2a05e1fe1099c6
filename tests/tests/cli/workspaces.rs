//! `avp workspaces`: the workspaces that hold secrets, with their counts (AVP WORKSPACES).
//! The Redis backend's side is in `tests/redis/workspaces.rs`.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, run, set, set_in, text};

#[test]
fn workspaces_lists_each_workspace_with_its_count() {
    let agent = TestAgent::start_initialized();
    let empty = run(&agent, &["workspaces"], b"");
    assert_eq!(code(&empty), 0, "{}", text(&empty.stderr));
    assert!(empty.stdout.is_empty());
    assert_eq!(
        text(&empty.stderr),
        "no workspace holds secrets yet — store one with `avp set NAME`\n"
    );
    set(&agent, "A", b"1");
    set(&agent, "B", b"2");
    set_in(&agent, "team/prod", "C", b"3");
    set_in(&agent, "ci", "D", b"4");
    set_in(&agent, "gone", "E", b"5");
    avp(&agent)
        .args(["-w", "gone", "rm", "E"])
        .assert()
        .success();
    avp(&agent)
        .arg("workspaces")
        .assert()
        .success()
        .stdout("WORKSPACE  SECRETS\nci         1\ndefault    2\nteam/prod  1\n");
    avp(&agent)
        .args(["--json", "workspaces"])
        .assert()
        .success()
        .stdout(
            "{\"truncated\":false,\"workspaces\":[{\"secrets\":1,\"workspace\":\"ci\"},\
             {\"secrets\":2,\"workspace\":\"default\"},{\"secrets\":1,\"workspace\":\"team/prod\"}]}\n",
        );
}

#[test]
fn workspaces_needs_an_unlocked_vault() {
    let agent = TestAgent::start();
    let out = run(&agent, &["workspaces"], b"");
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("(VAULT_NOT_INITIALIZED)"),
        "{}",
        text(&out.stderr)
    );
    agent.init();
    avp(&agent).arg("lock").assert().success();
    let out = run(&agent, &["--json", "workspaces"], b"");
    assert_eq!(code(&out), 4);
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).expect("JSON error");
    assert_eq!(doc["error"]["code"], "VAULT_LOCKED");
}
