//! `avp status` (text and `--json`) says why and when the vault last locked, after each kind
//! of lock a test can cause: `avp lock`, the idle timer, the maximum unlock lifetime,
//! SIGUSR1, and logind's sleep and screen-lock signals (a private bus with `mock-logind`);
//! the audit log names the shutdown lock.

use avp_tests::cli::{avp, code, passphrase_line, run, text};
use avp_tests::logind::{MockLogind, SystemBus};
use avp_tests::{AgentOptions, TestAgent};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::{Duration, Instant};

fn status_json(agent: &TestAgent) -> Value {
    let out = run(agent, &["--json", "status"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until the vault is locked, then checks both forms of `avp status` name `reason`.
fn assert_locked_by(agent: &TestAgent, reason: &str, meaning: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let doc = loop {
        let doc = status_json(agent);
        if doc["state"] == "locked" {
            break doc;
        }
        assert!(Instant::now() < deadline, "never locked ({reason})");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(doc["last_lock_reason"], reason, "{doc}");
    let at = doc["last_locked_at"].as_str().expect("a lock time");
    assert!(at.len() == 20 && at.ends_with('Z'), "RFC 3339 UTC: {at}");
    let out = run(agent, &["status"], b"");
    let shown = text(&out.stdout);
    let line = format!("locked:   last at {at}, {reason} ({meaning})\n");
    assert!(shown.contains(&line), "no {line:?} in:\n{shown}");
}

fn unlock(agent: &TestAgent) {
    avp(agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success();
}

#[test]
fn status_says_why_and_when_the_vault_last_locked() {
    let bus = SystemBus::start();
    let mut logind = MockLogind::start(&bus, &[]);
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![bus.env(), ("XDG_SESSION_ID".into(), "c1".into())],
        ..Default::default()
    });
    agent.init();
    let doc = status_json(&agent);
    assert_eq!(doc["last_lock_reason"], Value::Null, "never locked: {doc}");
    assert_eq!(doc["last_locked_at"], Value::Null);
    assert!(!text(&run(&agent, &["status"], b"").stdout).contains("locked:"));

    avp(&agent).arg("lock").assert().success();
    assert_locked_by(&agent, "explicit", "avp lock or a LOCK request");
    unlock(&agent);
    agent.signal(Signal::SIGUSR1);
    assert_locked_by(&agent, "signal", "SIGUSR1");
    unlock(&agent);
    logind.send("sleep true");
    assert_locked_by(&agent, "sleep", "the system went to sleep");
    unlock(&agent);
    logind.send("lock c1");
    assert_locked_by(&agent, "screen_lock", "the login session was locked");
    unlock(&agent);
    logind.send("hint c1 true");
    assert_locked_by(&agent, "screen_lock", "the login session was locked");
}

#[test]
fn the_idle_timer_and_the_shutdown_are_named_too() {
    let mut agent = TestAgent::start_with(AgentOptions {
        args: vec!["--idle-lock".into(), "1s".into()],
        ..Default::default()
    });
    agent.init();
    assert_locked_by(&agent, "idle", "no secret used for the idle period");
    unlock(&agent);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)), Some(0));
    let log = std::fs::read_to_string(&agent.audit_log).unwrap();
    let last_lock = log
        .lines()
        .rev()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["operation"] == "VAULT_LOCKED")
        .expect("a VAULT_LOCKED line");
    assert_eq!(last_lock["reason"], "shutdown", "{log}");
}

#[test]
fn the_maximum_unlock_lifetime_locks_a_vault_in_constant_use() {
    let agent = TestAgent::start_with(AgentOptions {
        args: vec![
            "--max-unlock".into(),
            "2s".into(),
            "--idle-lock".into(),
            "1h".into(),
        ],
        ..Default::default()
    });
    agent.init();
    avp(&agent).args(["set", "K", "v"]).assert().success();
    let unlocked_at = Instant::now();
    // Used all along: the idle timer never fires, the lifetime does.
    while status_json(&agent)["state"] == "unlocked" {
        assert!(
            unlocked_at.elapsed() < Duration::from_secs(10),
            "still unlocked 10 s into a 2 s lifetime"
        );
        let _ = run(&agent, &["get", "K"], b"");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        unlocked_at.elapsed() >= Duration::from_millis(1500),
        "locked after {:?}, before the lifetime",
        unlocked_at.elapsed()
    );
    assert_locked_by(&agent, "max_lifetime", "the maximum unlock lifetime passed");
}
