//! `avp` on a terminal: hidden prompts (twice for a new passphrase or value) and the
//! newline `get` adds only for a terminal. The terminal is a pseudo-terminal made by
//! util-linux `script`, which is part of every Debian system (package bsdutils).

use avp_tests::TestAgent;
use avp_tests::cli::{avp, get, passphrase_line, set};
use avp_tests::terminal::Terminal;

#[test]
fn get_adds_a_newline_only_on_a_terminal() {
    let agent = TestAgent::start_initialized();
    set(&agent, "A", b"value");
    let (code, screen) = Terminal::run(&agent, "get A", &[]).finish();
    assert_eq!(code, 0);
    assert_eq!(screen, "value\r\n");
    assert_eq!(get(&agent, "A"), b"value", "no newline into a pipe");
}

#[test]
fn init_asks_twice_without_echo() {
    let agent = TestAgent::start();
    let mut term = Terminal::run(&agent, "init --work-factor 10", &[]);
    term.wait_for("New vault passphrase: ");
    term.type_line("MARKER-typed");
    term.wait_for("Retype to confirm: ");
    term.type_line("MARKER-typed");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("vault created and unlocked"), "{screen}");
    assert!(
        !screen.contains("MARKER"),
        "the passphrase was echoed: {screen}"
    );
    avp(&agent).arg("lock").assert().success();
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin("MARKER-typed\n")
        .assert()
        .success();
}

#[test]
fn init_refuses_two_different_passphrases() {
    let agent = TestAgent::start();
    let mut term = Terminal::run(&agent, "init --work-factor 10", &[]);
    term.wait_for("New vault passphrase: ");
    term.type_line("one");
    term.wait_for("Retype to confirm: ");
    term.type_line("two");
    let (code, screen) = term.finish();
    assert_eq!(code, 1);
    assert!(
        screen.contains(
            "avp: the two passphrases differ; nothing was changed — run the command again"
        ),
        "{screen}"
    );
    avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .code(1);
}

#[test]
fn unlock_asks_once() {
    let agent = TestAgent::start_initialized();
    avp(&agent).arg("lock").assert().success();
    let mut term = Terminal::run(&agent, "unlock", &[]);
    term.wait_for("Vault passphrase: ");
    term.type_line(avp_tests::TEST_PASSPHRASE);
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains(avp_tests::TEST_PASSPHRASE), "{screen}");
}

#[test]
fn set_asks_for_a_hidden_value_twice() {
    let agent = TestAgent::start_initialized();
    let mut term = Terminal::run(&agent, "set TOKEN", &[]);
    term.wait_for("Value of TOKEN (hidden): ");
    term.type_line("MARKER-token");
    term.wait_for("Retype to confirm: ");
    term.type_line("MARKER-token");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("MARKER"), "the value was echoed: {screen}");
    assert_eq!(
        get(&agent, "TOKEN"),
        b"MARKER-token",
        "one line, without its newline"
    );
}

#[test]
fn no_expiry_on_a_terminal_stores_the_current_value_again_without_asking() {
    let agent = TestAgent::start_initialized();
    avp(&agent)
        .args([
            "set",
            "TEMP",
            "-",
            "--expires-in",
            "1h",
            "--label",
            "env=prod",
        ])
        .write_stdin(b"MARKER-kept".to_vec())
        .assert()
        .success();
    let (code, screen) = Terminal::run(&agent, "set TEMP --no-expiry", &[]).finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(
        screen,
        "removed the expiry of TEMP in workspace default: version 2 holds the same value\r\n"
    );
    let out = avp(&agent)
        .args(["--json", "get", "TEMP"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["value"], "MARKER-kept");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["expires_at"], serde_json::Value::Null);
    assert_eq!(doc["labels"]["env"], "prod", "labels kept");
}

/// Ctrl-D at a value or passphrase prompt cancels: it says so and that nothing changed,
/// not that a path or its permissions are wrong.
#[test]
fn end_of_input_at_a_prompt_cancels_and_changes_nothing() {
    let agent = TestAgent::start_initialized();
    let mut term = Terminal::run(&agent, "set TOKEN", &[]);
    term.wait_for("Value of TOKEN (hidden): ");
    term.end_of_input();
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains(
            "avp: cancelled at the prompt (end of input); nothing was changed — run the command again when ready"
        ),
        "{screen}"
    );
    avp(&agent).args(["get", "TOKEN"]).assert().code(1);

    avp(&agent).arg("lock").assert().success();
    let mut term = Terminal::run(&agent, "unlock", &[]);
    term.wait_for("Vault passphrase: ");
    term.end_of_input();
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("avp: cancelled at the prompt"), "{screen}");
    avp(&agent).args(["get", "TOKEN"]).assert().code(4);
}

/// An empty new passphrase or value is refused right after the first entry (no retype), as
/// a local mistake without a protocol code; nothing is created or stored.
#[test]
fn an_empty_entry_is_refused_at_once() {
    let agent = TestAgent::start();
    let mut term = Terminal::run(&agent, "init --work-factor 10", &[]);
    term.wait_for("New vault passphrase: ");
    term.type_line("");
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(!screen.contains("Retype"), "{screen}");
    assert!(
        screen.contains("avp: the passphrase is empty — choose a non-empty passphrase"),
        "{screen}"
    );
    avp(&agent)
        .arg("status")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("vault:    uninitialized"));

    avp(&agent)
        .args(["init", "--passphrase-stdin", "--work-factor", "10"])
        .write_stdin(passphrase_line())
        .assert()
        .success();
    set(&agent, "K", b"kept");
    let mut term = Terminal::run(&agent, "set K", &[]);
    term.wait_for("Value of K (hidden): ");
    term.type_line("");
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(!screen.contains("Retype"), "{screen}");
    assert!(
        screen.contains("avp: the value is empty; nothing was stored — "),
        "{screen}"
    );
    assert_eq!(get(&agent, "K"), b"kept");
}
