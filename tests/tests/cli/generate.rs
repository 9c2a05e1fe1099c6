//! `avp set NAME --generate`: a random value of the asked length and characters, never
//! printed unless `--print`, refusing to replace an existing secret unless `--force`.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, run, set, text};

fn history_len(agent: &TestAgent, name: &str) -> usize {
    let out = run(agent, &["history", name], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    text(&out.stdout).lines().count() - 1
}

#[test]
fn generate_stores_the_asked_length_and_charset_without_printing_it() {
    let agent = TestAgent::start_initialized();
    let out = run(
        &agent,
        &[
            "set",
            "TOKEN",
            "--generate",
            "--length",
            "40",
            "--charset",
            "hex",
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let value = get(&agent, "TOKEN");
    assert_eq!(value.len(), 40);
    assert!(
        value.iter().all(|b| b"0123456789abcdef".contains(b)),
        "{value:?}"
    );
    let said = text(&out.stdout);
    assert_eq!(
        said,
        "created TOKEN in workspace default with 40 random hex characters: version 1 — read it \
         with `avp get TOKEN`\n"
    );
    assert!(!said.contains(&text(&value)) && out.stderr.is_empty());

    avp(&agent)
        .args(["set", "DEFAULTS", "--generate"])
        .assert()
        .success();
    let value = get(&agent, "DEFAULTS");
    assert_eq!(value.len(), 32, "32 characters by default");
    assert!(
        value.iter().all(u8::is_ascii_alphanumeric),
        "alnum by default"
    );
    avp(&agent)
        .args([
            "set",
            "PIN",
            "--generate",
            "--charset",
            "digits",
            "--length",
            "6",
        ])
        .assert()
        .success();
    assert!(get(&agent, "PIN").iter().all(u8::is_ascii_digit));
    avp(&agent)
        .args([
            "set",
            "PUNCT",
            "--generate",
            "--charset",
            "ascii",
            "--length",
            "500",
        ])
        .assert()
        .success();
    let value = get(&agent, "PUNCT");
    assert!(value.iter().all(|b| (b'!'..=b'~').contains(b)));
    assert!(
        value.iter().any(|b| !b.is_ascii_alphanumeric()),
        "punctuation drawn"
    );
}

#[test]
fn generate_refuses_an_existing_secret_unless_forced() {
    let agent = TestAgent::start_initialized();
    set(&agent, "DB", b"hand-typed");
    let refused = run(&agent, &["set", "DB", "--generate"], b"");
    assert_eq!(code(&refused), 1);
    assert_eq!(
        text(&refused.stderr),
        "avp: `DB` already exists in workspace `default` (INVALID_REQUEST) — pass --force to \
         replace its value with a generated one (the old value stays in `avp history`), or \
         choose another name\n"
    );
    assert_eq!(get(&agent, "DB"), b"hand-typed");
    assert_eq!(history_len(&agent, "DB"), 1);

    let forced = run(
        &agent,
        &["set", "DB", "--generate", "--force", "--length", "20"],
        b"",
    );
    assert_eq!(code(&forced), 0, "{}", text(&forced.stderr));
    assert!(text(&forced.stdout).starts_with("replaced DB in workspace default with 20"));
    let value = get(&agent, "DB");
    assert_eq!(value.len(), 20);
    assert_eq!(history_len(&agent, "DB"), 2);
    assert_eq!(
        run(&agent, &["get", "DB", "--version", "1"], b"").stdout,
        b"hand-typed"
    );
}

#[test]
fn print_writes_the_value_alone_on_stdout_or_in_the_json() {
    let agent = TestAgent::start_initialized();
    let out = run(
        &agent,
        &["set", "P", "--generate", "--print", "--length", "24"],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(out.stdout, get(&agent, "P"), "no newline into a pipe");
    assert!(text(&out.stderr).starts_with("created P in workspace default"));

    let out = run(
        &agent,
        &["--json", "set", "Q", "--generate", "--print"],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["value"].as_str().unwrap().as_bytes(), get(&agent, "Q"));
    assert_eq!(doc["encoding"], "utf8");
    assert_eq!(doc["generated"]["charset"], "alnum");
    assert_eq!(doc["generated"]["length"], 32);
    assert_eq!(doc["version"], 1);

    let out = run(&agent, &["--json", "set", "R", "--generate"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert!(doc.get("value").is_none(), "{doc}");
    assert_eq!(doc["created"], true);
}

#[test]
fn generate_options_need_generate_and_exclude_a_value() {
    let agent = TestAgent::start_initialized();
    for args in [
        &["set", "A", "v", "--length", "5"][..],
        &["set", "A", "v", "--print"],
        &["set", "A", "v", "--charset", "hex"],
        &["set", "A", "v", "-f"],
        &["set", "A", "v", "--generate"],
        &["set", "A", "--generate", "--length", "0"],
        &["set", "A", "--generate", "--charset", "emoji"],
    ] {
        let out = run(&agent, args, b"");
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(code(&run(&agent, &["get", "A"], b"")), 1, "nothing stored");
}

/// Issue 16: `rotate A v --length 5` was accepted and stored `v` (clap's `requires` does not
/// fire when the value, which conflicts with --generate, is given). Every generate-only
/// option without --generate is a usage error on `set` and `rotate`, with or without a
/// value, and under --json the JSON error document with code USAGE; nothing is stored.
#[test]
fn generate_options_without_generate_are_usage_errors_under_json_too() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"old");
    let cases: [(&[&str], &[u8]); 9] = [
        (&["rotate", "A", "new", "--length", "5"], b""),
        (&["rotate", "A", "-", "--length", "5"], b"new"),
        (&["rotate", "A", "--length", "5"], b"new"),
        (&["rotate", "A", "new", "--charset", "hex"], b""),
        (&["rotate", "A", "--charset", "hex"], b"new"),
        (&["set", "A", "new", "--length", "5"], b""),
        (&["set", "A", "-", "--length", "5"], b"new"),
        (&["set", "A", "new", "--charset", "hex"], b""),
        (&["set", "A", "--charset", "hex"], b"new"),
    ];
    for (args, stdin) in cases {
        let out = run(&agent, args, stdin);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");

        let json_args: Vec<&str> = std::iter::once("--json")
            .chain(args.iter().copied())
            .collect();
        let out = run(&agent, &json_args, stdin);
        assert_eq!(code(&out), 2, "{json_args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{json_args:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|err| panic!("{json_args:?}: {err}: {}", text(&out.stderr)));
        assert_eq!(doc["error"]["code"], "USAGE", "{json_args:?}: {doc}");
        assert_eq!(text(&out.stderr).lines().count(), 1, "{json_args:?}");
    }
    assert_eq!(get(&agent, "A"), b"old", "nothing stored");
    assert_eq!(history_len(&agent, "A"), 1);
    // With --generate, rotate's --length still works.
    let out = run(&agent, &["rotate", "A", "--generate", "--length", "7"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(get(&agent, "A").len(), 7);
    let out = run(&agent, &["rotate", "A", "--generate"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(get(&agent, "A").len(), 32);
}
