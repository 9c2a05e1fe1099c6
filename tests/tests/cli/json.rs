//! `--json`: one document per command on stdout, with the AVP SDKs' snake_case names and
//! RFC 3339 UTC times.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, passphrase_line, run, set, text};
use serde_json::Value;

fn json(agent: &TestAgent, args: &[&str], stdin: &[u8]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = run(agent, &full, stdin);
    assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
    assert_eq!(
        out.stdout.iter().filter(|&&b| b == b'\n').count(),
        1,
        "one line"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)))
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[test]
fn vault_commands() {
    let agent = TestAgent::start();
    let doc = json(
        &agent,
        &["init", "--passphrase-stdin", "--work-factor", "10"],
        &passphrase_line(),
    );
    assert_eq!(doc, serde_json::json!({"state": "unlocked"}));
    assert_eq!(
        json(&agent, &["lock"], b""),
        serde_json::json!({"state": "locked"})
    );
    let doc = json(
        &agent,
        &["unlock", "--passphrase-stdin"],
        &passphrase_line(),
    );
    assert_eq!(doc, serde_json::json!({"state": "unlocked"}));
    let lines = format!("{}\nnext\n", avp_tests::TEST_PASSPHRASE);
    let doc = json(&agent, &["passwd", "--passphrase-stdin"], lines.as_bytes());
    assert_eq!(doc, serde_json::json!({"passphrase_changed": true}));
}

#[test]
fn status_and_discover() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"x");
    let doc = json(&agent, &["status"], b"");
    assert_eq!(doc["state"], "unlocked");
    assert_eq!(doc["secrets"], 1);
    assert_eq!(doc["workspaces"], 1);
    assert_eq!(doc["protocol_version"], 2);
    assert_eq!(doc["client_protocol_version"], 2);
    assert_eq!(doc["client_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["pid"], agent.pid());
    assert_eq!(doc["socket"], agent.socket.display().to_string());
    assert!(doc["idle_lock_in_seconds"].as_u64().unwrap() > 0);
    assert_eq!(doc["hardening"]["dumpable"], false);
    let doc = json(&agent, &["discover"], b"");
    assert_eq!(doc["conformance"], "full");
    assert_eq!(doc["protocol_version"], 2);
    assert_eq!(doc["backend"]["status"], "available");
    assert_eq!(doc["limits"]["max_secret_value_length"], 65_536);
    assert_eq!(doc["limits"]["max_labels_per_secret"], 64);
    assert_eq!(doc["limits"]["max_session_ttl_seconds"], 86_400);
    assert_eq!(doc["capabilities"]["versioning"], true);
    assert!(doc["auth_methods"].is_array());
    avp(&agent).arg("lock").assert().success();
    assert_eq!(
        json(&agent, &["discover"], b"")["backend"]["status"],
        "locked"
    );
    assert_eq!(json(&agent, &["status"], b"")["state"], "locked");
}

#[test]
fn set_get_rotate_rm() {
    let agent = TestAgent::start_initialized();
    let doc = json(&agent, &["set", "API", "v1", "--label", "env=prod"], b"");
    assert_eq!(doc["name"], "API");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["created"], true);
    assert!(is_rfc3339_utc(&doc["created_at"]) && is_rfc3339_utc(&doc["updated_at"]));
    let doc = json(&agent, &["set", "API", "-"], b"v2 \"quoted\"\n");
    assert_eq!(
        (doc["version"].as_u64(), doc["created"].as_bool()),
        (Some(2), Some(false))
    );

    let doc = json(&agent, &["get", "API"], b"");
    assert_eq!(doc["name"], "API");
    assert_eq!(doc["value"], "v2 \"quoted\"\n");
    assert_eq!(doc["encoding"], "utf8");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["labels"], serde_json::json!({"env": "prod"}));
    assert_eq!(doc["expires_at"], Value::Null);
    assert!(is_rfc3339_utc(&doc["created_at"]) && is_rfc3339_utc(&doc["updated_at"]));
    assert_eq!(
        json(&agent, &["get", "API", "--version", "1"], b"")["value"],
        "v1"
    );

    set(&agent, "BIN", b"\xff\x00\x01");
    let doc = json(&agent, &["get", "BIN"], b"");
    assert_eq!(doc["encoding"], "base64");
    assert_eq!(doc["value"], "/wAB");

    let doc = json(&agent, &["rotate", "API", "v3"], b"");
    assert_eq!(doc["name"], "API");
    assert_eq!(doc["previous_version"], 2);
    assert_eq!(doc["new_version"], 3);
    assert!(is_rfc3339_utc(&doc["updated_at"]));
    let doc = json(&agent, &["rotate", "API", "--generate"], b"");
    assert_eq!(doc["new_version"], 4);
    assert!(
        doc.get("value").is_none(),
        "a generated value is not printed"
    );

    assert_eq!(
        json(&agent, &["rm", "API"], b""),
        serde_json::json!({"name": "API", "deleted": true})
    );
    assert_eq!(
        json(&agent, &["rm", "-f", "API"], b""),
        serde_json::json!({"name": "API", "deleted": false})
    );
}

#[test]
fn ls_and_history() {
    let agent = TestAgent::start_initialized();
    assert_eq!(
        json(&agent, &["ls"], b""),
        serde_json::json!({"workspace": "default", "secrets": []})
    );
    avp(&agent)
        .args(["set", "B", "1", "--label", "k=v"])
        .assert()
        .success();
    set(&agent, "A", b"1");
    set(&agent, "A", b"2");
    let doc = json(&agent, &["ls"], b"");
    let secrets = doc["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0]["name"], "A");
    assert_eq!(secrets[0]["version"], 2);
    assert_eq!(secrets[0]["labels"], serde_json::json!({}));
    assert_eq!(secrets[1]["labels"], serde_json::json!({"k": "v"}));
    for secret in secrets {
        assert!(secret.get("value").is_none(), "ls never shows values");
        assert!(is_rfc3339_utc(&secret["updated_at"]) && is_rfc3339_utc(&secret["created_at"]));
        assert_eq!(secret["expires_at"], Value::Null);
    }
    let doc = json(&agent, &["ls", "--label", "k=v"], b"");
    assert_eq!(doc["secrets"].as_array().unwrap().len(), 1);
    let doc = json(&agent, &["-w", "other", "ls"], b"");
    assert_eq!(doc["workspace"], "other");

    let doc = json(&agent, &["history", "A"], b"");
    assert_eq!(doc["name"], "A");
    let versions = doc["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[1]["version"], 2);
    assert!(is_rfc3339_utc(&versions[0]["created_at"]));
}

#[test]
fn import_and_export_summaries() {
    let agent = TestAgent::start_initialized();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.env");
    std::fs::write(&file, "A=1\nB=2\n").unwrap();
    let doc = json(&agent, &["import", file.to_str().unwrap()], b"");
    assert_eq!(doc["imported"], 2);
    assert_eq!(
        doc["secrets"][0],
        serde_json::json!({"name": "A", "version": 1, "created": true, "workspace": "default"})
    );
    let out_file = dir.path().join("out.json");
    let doc = json(
        &agent,
        &[
            "export",
            "--format",
            "json",
            "-o",
            out_file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(doc["exported"], 2);
    assert_eq!(doc["path"], out_file.display().to_string());
}
