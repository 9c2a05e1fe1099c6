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

/// The longest workspace id there is, numbered `i`: sorts in the order of `i`.
fn long_workspace(i: usize) -> String {
    let id = format!("w{i:05}-");
    format!("{id}{}", "x".repeat(255 - id.len()))
}

/// Issue 16: WORKSPACES lists at most 3,000 workspaces (PROTOCOL.md §7.17), the first ones
/// in byte order, with `truncated` true when more exist — and 3,000 of the longest ids
/// (255 bytes) still fit one frame. `avp workspaces` prints them and warns; `--json`
/// carries the flag.
#[test]
fn workspaces_lists_at_most_3000_and_says_when_more_exist() {
    use avp_client::{
        Client, SecretName, SecretValue, StoreOptions, WorkspaceId, WorkspacesResult,
    };
    const CAP: usize = 3_000;
    assert_eq!(
        WorkspacesResult::MAX_LISTED,
        CAP,
        "PROTOCOL.md §7.17 says 3,000"
    );
    let agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    let name = SecretName::new("S").unwrap();
    // One secret per workspace, through one session each on this one connection.
    let store_in = |client: &mut Client, i: usize| {
        let workspace = WorkspaceId::new(long_workspace(i)).unwrap();
        let session = client.authenticate(&workspace).unwrap();
        client
            .store(
                &session,
                &name,
                SecretValue::from_slice(b"v"),
                StoreOptions::default(),
            )
            .unwrap();
        client.terminate(session).unwrap();
    };
    for i in 0..CAP {
        store_in(&mut client, i);
    }
    // Exactly at the cap: everything listed, not truncated.
    let result = client.workspaces().unwrap();
    assert_eq!(result.workspaces.len(), CAP);
    assert!(!result.truncated);

    // Two more, one sorting first and one last: the first 3,000 in byte order are listed.
    let first = WorkspaceId::new("a").unwrap();
    let session = client.authenticate(&first).unwrap();
    for secret in ["A", "B"] {
        let secret = SecretName::new(secret).unwrap();
        client
            .store(
                &session,
                &secret,
                SecretValue::from_slice(b"v"),
                StoreOptions::default(),
            )
            .unwrap();
    }
    client.terminate(session).unwrap();
    store_in(&mut client, CAP);
    let result = client.workspaces().unwrap();
    assert!(result.truncated, "3,002 workspaces, 3,000 listed");
    assert_eq!(result.workspaces.len(), CAP);
    assert_eq!(result.workspaces[0].workspace.as_str(), "a");
    assert_eq!(result.workspaces[0].secrets, 2);
    for (i, listed) in result.workspaces[1..].iter().enumerate() {
        assert_eq!(listed.workspace.as_str(), long_workspace(i));
        assert_eq!(listed.secrets, 1);
    }
    // The last of the long ids (w02999 and w03000) are not listed.
    assert_eq!(
        result.workspaces.last().unwrap().workspace.as_str(),
        long_workspace(CAP - 2)
    );

    let out = run(&agent, &["workspaces"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1 + CAP, "a header and 3,000 rows");
    assert!(stdout.lines().nth(1).unwrap().starts_with("a "));
    assert!(!stdout.contains(&long_workspace(CAP - 1)));
    assert_eq!(
        text(&out.stderr),
        "avp: warning: only the first 3000 workspaces are listed\n"
    );
    let out = run(&agent, &["--json", "workspaces"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["truncated"], true);
    let listed = doc["workspaces"].as_array().unwrap();
    assert_eq!(listed.len(), CAP);
    assert_eq!(
        listed[0],
        serde_json::json!({"workspace": "a", "secrets": 2})
    );
    assert_eq!(
        listed[CAP - 1]["workspace"],
        long_workspace(CAP - 2).as_str()
    );
}
