//! A command that needs the vault, run on a terminal while the vault is locked, asks for the
//! passphrase on the terminal and carries on (README "Running the agent"): three tries, never
//! with `--no-prompt` or `AVP_NO_PROMPT=1`, stdin and stdout left to the command, and one
//! prompt for two terminals that meet the locked vault at once.

use avp_tests::TEST_PASSPHRASE;
use avp_tests::TestAgent;
use avp_tests::cli::{avp, get, set};
use avp_tests::terminal::Terminal;

fn locked_agent_with(name: &str, value: &[u8]) -> TestAgent {
    let agent = TestAgent::start_initialized();
    set(&agent, name, value);
    avp(&agent).arg("lock").assert().success();
    agent
}

#[test]
fn get_on_a_locked_vault_asks_unlocks_and_prints_the_value() {
    let agent = locked_agent_with("A", b"MARKER-value");
    let mut term = Terminal::run(&agent, "get A", &[]);
    term.wait_for("Vault passphrase: ");
    term.type_line(TEST_PASSPHRASE);
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("avp: the vault is locked."), "{screen}");
    assert!(screen.ends_with("MARKER-value\r\n"), "{screen}");
    assert!(!screen.contains(TEST_PASSPHRASE), "echoed: {screen}");
    // The vault stays unlocked for the next command.
    assert_eq!(get(&agent, "A"), b"MARKER-value");
}

#[test]
fn a_wrong_passphrase_is_asked_again() {
    let agent = locked_agent_with("A", b"v");
    let mut term = Terminal::run(&agent, "get A", &[]);
    term.wait_for("Vault passphrase: ");
    term.type_line("wrong");
    term.wait_for("Wrong passphrase, try again.");
    term.type_line(TEST_PASSPHRASE);
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(screen.matches("Vault passphrase: ").count(), 2, "{screen}");
}

#[test]
fn three_wrong_passphrases_give_up() {
    let agent = locked_agent_with("A", b"v");
    let mut term = Terminal::run(&agent, "get A", &[]);
    for _ in 0..2 {
        term.wait_for("Vault passphrase: ");
        term.type_line("wrong");
        term.wait_for("Wrong passphrase, try again.");
    }
    term.type_line("wrong");
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert_eq!(screen.matches("Vault passphrase: ").count(), 3, "{screen}");
    assert!(screen.contains("AUTHENTICATION_FAILED"), "{screen}");
    avp(&agent).args(["get", "A"]).assert().code(4);
}

#[test]
fn no_prompt_flag_and_variable_keep_exit_4() {
    let agent = locked_agent_with("A", b"v");
    let (code, screen) = Terminal::run(&agent, "--no-prompt get A", &[]).finish();
    assert_eq!(code, 4, "{screen}");
    assert!(!screen.contains("Vault passphrase"), "{screen}");
    let (code, screen) = Terminal::run(&agent, "get A", &[("AVP_NO_PROMPT", "1")]).finish();
    assert_eq!(code, 4, "{screen}");
    assert!(!screen.contains("Vault passphrase"), "{screen}");
}

#[test]
fn stdin_stays_the_value_and_stdout_the_secret() {
    let agent = locked_agent_with("A", b"MARKER-a");
    let files = tempfile::tempdir().unwrap();
    let input = files.path().join("in");
    let output = files.path().join("out");
    std::fs::write(&input, b"MARKER-piped").unwrap();
    let mut term = Terminal::run(&agent, &format!("set PIPED - < '{}'", input.display()), &[]);
    term.wait_for("Vault passphrase: ");
    term.type_line(TEST_PASSPHRASE);
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(get(&agent, "PIPED"), b"MARKER-piped");

    avp(&agent).arg("lock").assert().success();
    let mut term = Terminal::run(&agent, &format!("get A > '{}'", output.display()), &[]);
    term.wait_for("Vault passphrase: ");
    term.type_line(TEST_PASSPHRASE);
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(std::fs::read(&output).unwrap(), b"MARKER-a");
    assert!(!screen.contains("MARKER-a"), "{screen}");
}

#[test]
fn two_terminals_on_a_locked_vault_get_one_prompt() {
    let agent = locked_agent_with("A", b"MARKER-both");
    let mut first = Terminal::run(&agent, "get A", &[]);
    first.wait_for("Vault passphrase: ");
    let second = Terminal::run(&agent, "get A", &[]);
    second.wait_for("waiting for the unlock in another terminal");
    first.type_line(TEST_PASSPHRASE);
    let (code, screen) = first.finish();
    assert_eq!(code, 0, "{screen}");
    let (code, screen) = second.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.ends_with("MARKER-both\r\n"), "{screen}");
    assert!(
        !screen.contains("Vault passphrase"),
        "the second terminal asked too: {screen}"
    );
}
