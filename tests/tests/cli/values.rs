//! `avp ls --values` (masked previews: the length and at most 4 leading characters, never
//! the whole value) and `avp ls --reveal`.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, run, set, text};
use serde_json::json;

const TOKEN: &[u8] = b"sk_live_MARKER_0123456789abcdef0";

fn agent_with_values() -> TestAgent {
    let agent = TestAgent::start_initialized();
    set(&agent, "API_TOKEN", TOKEN);
    set(&agent, "PIN", b"1234");
    set(&agent, "BLOB", b"\xff\x00\xfe");
    set(
        &agent,
        "PEM",
        b"-----BEGIN KEY-----\nMARKERMARKER\n-----END KEY-----\n",
    );
    avp(&agent)
        .args(["-w", "other", "set", "ELSEWHERE", "x"])
        .assert()
        .success();
    agent
}

#[test]
fn values_are_masked_to_their_length_and_a_short_prefix() {
    let agent = agent_with_values();
    let out = run(&agent, &["ls", "--values"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "NAME       VERSION  LENGTH  VALUE\n\
         API_TOKEN  1        32      sk_l…\n\
         BLOB       1        3       (binary)\n\
         PEM        1        51      …\n\
         PIN        1        4       …\n"
    );
    assert!(!text(&out.stdout).contains("MARKER"));

    let out = run(&agent, &["--json", "ls", "--values"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["workspace"], "default");
    assert_eq!(
        doc["secrets"][0],
        json!({"name": "API_TOKEN", "version": 1, "length": 32, "preview": "sk_l…"})
    );
    assert!(!text(&out.stdout).contains("MARKER"));
}

#[test]
fn reveal_prints_every_value_on_one_line() {
    let agent = agent_with_values();
    let out = run(&agent, &["ls", "--reveal"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "NAME       VERSION  LENGTH  VALUE\n\
         API_TOKEN  1        32      sk_live_MARKER_0123456789abcdef0\n\
         BLOB       1        3       base64:/wD+\n\
         PEM        1        51      \"-----BEGIN KEY-----\\nMARKERMARKER\\n-----END KEY-----\\n\"\n\
         PIN        1        4       1234\n"
    );
    let out = run(&agent, &["--json", "-w", "other", "ls", "--reveal"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        doc,
        json!({"workspace": "other", "secrets": [
            {"name": "ELSEWHERE", "version": 1, "length": 1, "value": "x", "encoding": "utf8"}
        ]})
    );
}

#[test]
fn values_honour_the_label_filter_and_an_empty_workspace() {
    let agent = agent_with_values();
    avp(&agent)
        .args([
            "set",
            "LABELLED",
            "MARKER-long-enough-value",
            "--label",
            "env=prod",
        ])
        .assert()
        .success();
    let out = run(&agent, &["ls", "--values", "--label", "env=prod"], b"");
    assert_eq!(
        text(&out.stdout),
        "NAME      VERSION  LENGTH  VALUE\nLABELLED  1        24      MAR…\n"
    );
    let out = run(&agent, &["-w", "empty", "ls", "--values"], b"");
    assert_eq!(code(&out), 0);
    assert!(out.stdout.is_empty());
}
