//! `avp rm` asks before deleting when standard input is a terminal, unless `-f`/`--yes`;
//! without a terminal it deletes as before.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, run, set};
use avp_tests::terminal::Terminal;

fn exists(agent: &TestAgent, name: &str) -> bool {
    code(&run(agent, &["get", name], b"")) == 0
}

#[test]
fn rm_on_a_terminal_asks_and_a_no_keeps_the_secret() {
    let agent = TestAgent::start_initialized();
    set(&agent, "KEY", b"v");
    for answer in ["", "n", "nope"] {
        let mut term = Terminal::run(&agent, "rm KEY", &[]);
        term.wait_for("Delete KEY from workspace default? [y/N] ");
        term.type_line(answer);
        let (code, screen) = term.finish();
        assert_eq!(code, 1, "{screen}");
        assert!(
            screen.contains(
                "avp: not confirmed: KEY was not deleted (INVALID_REQUEST) — answer y to delete \
                 it, or pass --yes"
            ),
            "{screen}"
        );
        assert_eq!(get(&agent, "KEY"), b"v");
    }
    let mut term = Terminal::run(&agent, "-w default rm KEY", &[]);
    term.wait_for("[y/N] ");
    term.type_line("y");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("deleted KEY from workspace default"),
        "{screen}"
    );
    assert!(!exists(&agent, "KEY"));
}

#[test]
fn rm_yes_or_force_or_no_terminal_does_not_ask() {
    let agent = TestAgent::start_initialized();
    for (name, flag) in [("A", "--yes"), ("B", "-y"), ("C", "-f")] {
        set(&agent, name, b"v");
        let (code, screen) = Terminal::run(&agent, &format!("rm {name} {flag}"), &[]).finish();
        assert_eq!(code, 0, "{screen}");
        assert!(!screen.contains("[y/N]"), "{screen}");
        assert!(!exists(&agent, name));
    }
    set(&agent, "D", b"v");
    avp(&agent)
        .args(["rm", "D"])
        .assert()
        .success()
        .stdout("deleted D from workspace default\n");
    assert!(!exists(&agent, "D"));
}

#[test]
fn rm_of_a_missing_secret_on_a_terminal_does_not_ask() {
    let agent = TestAgent::start_initialized();
    let (code, screen) = Terminal::run(&agent, "rm NOPE", &[]).finish();
    assert_eq!(code, 1, "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
    assert!(screen.contains("(SECRET_NOT_FOUND)"), "{screen}");
}

/// Issue 16: under --json, `rm` still asks on the terminal, but the question no longer goes
/// to stderr, where it ran into the JSON error document: with stderr redirected the question
/// is still seen, and stderr holds the outcome alone — the refusal (answer no, or Ctrl-D) as
/// one JSON error document; a yes prints the JSON result on stdout and nothing on stderr.
#[test]
fn rm_under_json_asks_on_the_terminal_and_the_outcome_is_json() {
    let agent = TestAgent::start_initialized();
    set(&agent, "KEY", b"v");
    let err_file = agent.dir.path().join("stderr.json");
    let command = format!("--json rm KEY 2>'{}'", err_file.display());
    for answer in [Some("n"), None] {
        let mut term = Terminal::run(&agent, &command, &[]);
        term.wait_for("Delete KEY from workspace default? [y/N] ");
        match answer {
            Some(answer) => term.type_line(answer),
            None => term.end_of_input(),
        }
        let (code, screen) = term.finish();
        assert_eq!(code, 1, "{screen}");
        let stderr = std::fs::read_to_string(&err_file).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        let doc: serde_json::Value =
            serde_json::from_str(&stderr).unwrap_or_else(|err| panic!("{err}: {stderr:?}"));
        assert_eq!(
            doc,
            serde_json::json!({"error": {
                "code": "INVALID_REQUEST",
                "message": "not confirmed: KEY was not deleted — answer y to delete it, or \
                            pass --yes",
            }}),
            "{answer:?}"
        );
        assert!(!screen.contains("\"error\""), "{screen}");
        assert_eq!(get(&agent, "KEY"), b"v");
    }
    let mut term = Terminal::run(&agent, &command, &[]);
    term.wait_for("[y/N] ");
    term.type_line("y");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    let result = screen
        .lines()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON result: {screen}"));
    let result: serde_json::Value = serde_json::from_str(result.trim()).unwrap();
    assert_eq!(result, serde_json::json!({"name": "KEY", "deleted": true}));
    assert_eq!(std::fs::read_to_string(&err_file).unwrap(), "");
    assert!(!exists(&agent, "KEY"));
}
