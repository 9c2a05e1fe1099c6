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
