//! Locking when the user walks away: the real agent on a private system bus
//! (`dbus-daemon`) with `mock-logind` emitting logind's signals.
//!
//! A signal that must *not* lock is followed by one that must, from the same sender: the bus
//! delivers one sender's signals in order and the agent handles them in order, so the reason
//! STATUS gives for the lock says which signal locked the vault — no waiting for something
//! not to happen.

use avp_protocol::{LockReason, Request, Response, VaultState};
use avp_tests::logind::{MockLogind, SystemBus};
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::time::{Duration, Instant};

const FOLLOWING: &str = "following logind";

fn wait_for_log(agent: &TestAgent, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.logs().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the agent's log:\n{}",
            agent.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An unlocked agent on `bus` with `args` and `env`, once it follows logind.
fn agent_on(bus: &SystemBus, args: &[&str], env: &[(&str, &str)]) -> TestAgent {
    let mut all_env = vec![bus.env()];
    all_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let agent = TestAgent::start_with(AgentOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: all_env,
        ..Default::default()
    });
    agent.init();
    agent
}

/// The reason the vault locked for, once it has.
fn lock_reason(conn: &mut Conn) -> LockReason {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = conn.status();
        if status.state == VaultState::Locked {
            return status.last_lock_reason.expect("a locked vault says why");
        }
        assert!(Instant::now() < deadline, "the vault never locked");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unlock(agent: &TestAgent) {
    assert!(matches!(agent.unlock(), Response::Unlocked), "unlock");
}

const IN_C1: &[(&str, &str)] = &[("XDG_SESSION_ID", "c1")];

#[test]
fn prepare_for_sleep_true_locks_and_false_does_not() {
    let bus = SystemBus::start();
    let mut logind = MockLogind::start(&bus, &[]);
    let agent = agent_on(&bus, &[], IN_C1);
    wait_for_log(&agent, FOLLOWING);
    let mut conn = agent.connect();
    logind.send("sleep false");
    logind.send("lock c1");
    assert_eq!(
        lock_reason(&mut conn),
        LockReason::ScreenLock,
        "waking up locked it"
    );
    unlock(&agent);
    logind.send("sleep true");
    assert_eq!(lock_reason(&mut conn), LockReason::Sleep);
}

#[test]
fn the_sessions_lock_signal_and_locked_hint_lock_and_other_sessions_do_not() {
    let bus = SystemBus::start();
    let mut logind = MockLogind::start(&bus, &[]);
    let agent = agent_on(&bus, &[], IN_C1);
    wait_for_log(&agent, FOLLOWING);
    let mut conn = agent.connect();
    logind.send("lock c2");
    logind.send("hint c2 true");
    logind.send("hint c1 false");
    logind.send("sleep true");
    assert_eq!(
        lock_reason(&mut conn),
        LockReason::Sleep,
        "another session's lock, or an unlocked hint, locked it"
    );
    unlock(&agent);
    logind.send("lock c1");
    assert_eq!(lock_reason(&mut conn), LockReason::ScreenLock);
    unlock(&agent);
    logind.send("hint c1 true");
    assert_eq!(lock_reason(&mut conn), LockReason::ScreenLock);
}

#[test]
fn a_signal_from_anyone_but_logind_does_not_lock() {
    let bus = SystemBus::start();
    let mut logind = MockLogind::start(&bus, &[]);
    let agent = agent_on(&bus, &[], IN_C1);
    wait_for_log(&agent, FOLLOWING);
    let mut conn = agent.connect();
    logind.send("spoof-sleep");
    logind.send("lock c1");
    assert_eq!(
        lock_reason(&mut conn),
        LockReason::ScreenLock,
        "a PrepareForSleep from another sender locked it"
    );
}

#[test]
fn each_flag_turns_its_trigger_off() {
    let bus = SystemBus::start();
    let mut logind = MockLogind::start(&bus, &[]);

    let no_sleep = agent_on(&bus, &["--no-lock-on-sleep"], IN_C1);
    wait_for_log(&no_sleep, FOLLOWING);
    let mut conn = no_sleep.connect();
    logind.send("sleep true");
    logind.send("lock c1");
    assert_eq!(
        lock_reason(&mut conn),
        LockReason::ScreenLock,
        "--no-lock-on-sleep"
    );
    drop(no_sleep);

    let no_screen = agent_on(&bus, &["--no-lock-on-screen-lock"], IN_C1);
    wait_for_log(&no_screen, FOLLOWING);
    let mut conn = no_screen.connect();
    logind.send("lock c1");
    logind.send("hint c1 true");
    logind.send("sleep true");
    assert_eq!(
        lock_reason(&mut conn),
        LockReason::Sleep,
        "--no-lock-on-screen-lock"
    );
    drop(no_screen);

    // Both off: the agent does not even connect to the bus.
    let neither = agent_on(
        &bus,
        &["--no-lock-on-sleep", "--no-lock-on-screen-lock"],
        IN_C1,
    );
    let mut conn = neither.connect();
    logind.send("sleep true");
    logind.send("lock c1");
    assert_eq!(conn.status().state, VaultState::Unlocked);
    assert!(!neither.logs().contains("logind"), "{}", neither.logs());
}

#[test]
fn the_session_is_found_by_pid_or_as_the_users_display_session() {
    let no_env_session: &[(&str, &str)] = &[("XDG_SESSION_ID", "")];
    for mock_args in [&["--by-pid"][..], &["--display", "c1"]] {
        let bus = SystemBus::start();
        let mut logind = MockLogind::start(&bus, mock_args);
        let agent = agent_on(&bus, &[], no_env_session);
        wait_for_log(&agent, FOLLOWING);
        let mut conn = agent.connect();
        logind.send("lock c1");
        assert_eq!(
            lock_reason(&mut conn),
            LockReason::ScreenLock,
            "session found with {mock_args:?}"
        );
    }

    // No session at all: it says so, and still locks on sleep.
    let bus = SystemBus::start();
    let mut logind = MockLogind::start(&bus, &[]);
    let agent = agent_on(&bus, &[], no_env_session);
    wait_for_log(&agent, FOLLOWING);
    assert!(
        agent.logs().contains("will not lock on screen lock"),
        "{}",
        agent.logs()
    );
    let mut conn = agent.connect();
    logind.send("lock c1");
    logind.send("sleep true");
    assert_eq!(lock_reason(&mut conn), LockReason::Sleep);
}

#[test]
fn without_a_system_bus_or_logind_the_agent_says_so_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("unix:path={}", dir.path().join("no-bus").display());
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("DBUS_SYSTEM_BUS_ADDRESS".into(), nowhere)],
        ..Default::default()
    });
    agent.init();
    wait_for_log(&agent, "no system D-Bus");
    let mut conn = agent.connect();
    assert!(matches!(conn.call(&Request::Lock), Response::Locked));
    assert_eq!(conn.status().last_lock_reason, Some(LockReason::Explicit));
    unlock(&agent);
    let s = conn.session("default");
    assert!(conn.value(&s, "k").is_err());
    let logs = agent.logs();
    assert_eq!(logs.matches("D-Bus").count(), 1, "said once:\n{logs}");
    assert!(!logs.contains("ERROR"), "{logs}");

    // A bus with no logind on it.
    let bus = SystemBus::start();
    let agent = agent_on(&bus, &[], IN_C1);
    wait_for_log(&agent, "logind is not on the system D-Bus");
    let mut conn = agent.connect();
    assert!(matches!(conn.call(&Request::Lock), Response::Locked));
    assert_eq!(agent.logs().matches("D-Bus").count(), 1, "{}", agent.logs());
}
