//! The agent asks through a pinentry for callers that wait (`Authenticate` with
//! `wait_for_unlock`, PROTOCOL.md §9.1): one dialog for any number of waiters, a cooldown
//! after a cancel, every wait bounded, a clean environment — with a scripted pinentry that
//! speaks real Assuan (`avp-pinentry-script`) and with the real `pinentry-tty` on a
//! pseudo-terminal.

use avp_protocol::{ErrorCode, Request, Response, WorkspaceId};
use avp_tests::pinentry::ScriptedAgent;
use avp_tests::{AgentOptions, Conn, TEST_PASSPHRASE, TestAgent, error_code};
use std::path::Path;
use std::time::{Duration, Instant};

fn lock(agent: &TestAgent) {
    assert!(matches!(
        agent.connect().call(&Request::Lock),
        Response::Locked
    ));
}

fn authenticate_request(wait_for_unlock: bool) -> Request {
    Request::Authenticate {
        workspace: WorkspaceId::default_workspace(),
        agent_id: "pinentry-test".into(),
        ttl_seconds: None,
        wait_for_unlock,
    }
}

fn authenticate(conn: &mut Conn, wait_for_unlock: bool) -> Response {
    conn.call(&authenticate_request(wait_for_unlock))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_waiting_authenticate_unlocks_through_the_pinentry() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = ScriptedAgent::start(&[&pin], &[], &[]);
    let response = authenticate(&mut t.agent.connect(), true);
    assert!(
        matches!(response, Response::Authenticated(_)),
        "{response:?}"
    );
    // The waiter is answered as soon as the vault opens; the dialog's BYE follows.
    wait_for("the dialog's BYE", || {
        t.record().lines().any(|l| l == "END")
    });
    let commands = t.commands();
    let verbs: Vec<&str> = commands
        .iter()
        .map(|c| c.split(' ').next().unwrap())
        .filter(|v| *v != "OPTION")
        .collect();
    assert_eq!(verbs, ["SETTITLE", "SETDESC", "SETPROMPT", "GETPIN", "BYE"]);
    // The dialog names the asking program as the audit log does: pid and executable.
    let desc = commands.iter().find(|c| c.starts_with("SETDESC ")).unwrap();
    let me = std::env::current_exe().unwrap();
    assert!(
        desc.contains(&format!("{} (pid {})", me.display(), std::process::id())),
        "{desc}"
    );
    assert!(desc.contains("%0A"), "newlines are %-escaped: {desc}");
    assert_eq!(t.spawns(), 1);
}

#[test]
fn without_waiting_a_locked_vault_answers_at_once_and_asks_nobody() {
    let t = ScriptedAgent::start(&["pin=whatever"], &[], &[]);
    let response = authenticate(&mut t.agent.connect(), false);
    assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    assert_eq!(t.spawns(), 0, "no pinentry without wait_for_unlock");
}

#[test]
fn an_agent_without_a_pinentry_answers_waiters_at_once() {
    let agent = TestAgent::start();
    agent.init();
    lock(&agent);
    let response = authenticate(&mut agent.connect(), true);
    assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    let Response::Error(err) = response else {
        unreachable!()
    };
    assert!(err.message.contains("--pinentry"), "{}", err.message);
}

#[test]
fn a_hundred_waiters_cost_one_pinentry() {
    let gates = tempfile::tempdir().unwrap();
    let gate = gates.path().join("open");
    let gate_action = format!("gate={}", gate.display());
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = ScriptedAgent::start(&[&gate_action, &pin], &[], &[]);
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let waiters: Vec<_> = (0..100)
        .map(|_| {
            let mut conn = t.agent.connect();
            let sent = sent_tx.clone();
            std::thread::spawn(move || {
                let request = Request::Authenticate {
                    workspace: WorkspaceId::default_workspace(),
                    agent_id: "waiter".into(),
                    ttl_seconds: None,
                    wait_for_unlock: true,
                };
                avp_protocol::frame::write_message(&mut conn.stream, &request).unwrap();
                sent.send(()).unwrap();
                avp_protocol::frame::read_message::<Response>(&mut conn.stream)
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for _ in 0..100 {
        sent_rx.recv().unwrap();
    }
    // Every request is in and the dialog is showing: now the user types.
    wait_for("the GETPIN", || t.commands().iter().any(|c| c == "GETPIN"));
    std::fs::write(&gate, b"").unwrap();
    for waiter in waiters {
        let response = waiter.join().unwrap();
        assert!(
            matches!(response, Response::Authenticated(_)),
            "{response:?}"
        );
    }
    assert_eq!(t.spawns(), 1, "{}", t.record());
}

#[test]
fn a_cancel_answers_locked_and_is_not_reopened_during_the_cooldown() {
    let t = ScriptedAgent::start(&["cancel"], &["--pinentry-cooldown", "1h"], &[]);
    let response = authenticate(&mut t.agent.connect(), true);
    assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    for _ in 0..5 {
        let response = authenticate(&mut t.agent.connect(), true);
        assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    }
    assert_eq!(t.spawns(), 1, "a cancelled prompt was re-opened");
    // The user can still unlock by hand, and then waiters get their session.
    assert!(matches!(t.agent.unlock(), Response::Unlocked));
    let response = authenticate(&mut t.agent.connect(), true);
    assert!(matches!(response, Response::Authenticated(_)));
}

#[test]
fn after_the_cooldown_a_new_dialog_opens() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = ScriptedAgent::start(&["cancel"], &["--pinentry-cooldown", "1s"], &[]);
    assert_eq!(
        error_code(&authenticate(&mut t.agent.connect(), true)),
        ErrorCode::VaultLocked
    );
    // The script's actions restart with each run: make the second one answer.
    avp_tests::pinentry::write_wrapper(&t.wrapper, &t.record, &[&pin]);
    wait_for("a second dialog after the cooldown", || {
        matches!(
            authenticate(&mut t.agent.connect(), true),
            Response::Authenticated(_)
        )
    });
    assert_eq!(t.spawns(), 2);
}

#[test]
fn wrong_then_right_asks_again_with_an_error() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = ScriptedAgent::start(&["pin=wrong", &pin], &[], &[]);
    let response = authenticate(&mut t.agent.connect(), true);
    assert!(
        matches!(response, Response::Authenticated(_)),
        "{response:?}"
    );
    let commands = t.commands();
    let errors: Vec<_> = commands
        .iter()
        .filter(|c| c.starts_with("SETERROR "))
        .collect();
    assert_eq!(errors.len(), 1, "{commands:?}");
    assert!(errors[0].contains("try 2 of 3"), "{errors:?}");
    assert_eq!(commands.iter().filter(|c| *c == "GETPIN").count(), 2);
}

#[test]
fn three_wrong_passphrases_end_the_dialog_locked() {
    let t = ScriptedAgent::start(&["pin=a", "pin=b", "pin=c", "pin=never-asked"], &[], &[]);
    let response = authenticate(&mut t.agent.connect(), true);
    assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    assert_eq!(
        t.commands().iter().filter(|c| *c == "GETPIN").count(),
        3,
        "{:?}",
        t.commands()
    );
}

#[test]
fn a_hanging_pinentry_answers_locked_within_the_bound_and_is_killed() {
    let t = ScriptedAgent::start(&["hang"], &["--pinentry-timeout", "2s"], &[]);
    let mut waiter = t.agent.connect();
    let started = Instant::now();
    let socket = t.agent.socket.clone();
    let waiting = std::thread::spawn(move || authenticate(&mut waiter, true));
    wait_for("the GETPIN", || t.commands().iter().any(|c| c == "GETPIN"));
    // Meanwhile the agent answers everyone else.
    let mut other = Conn::raw(&socket);
    other.hello();
    assert!(matches!(other.call(&Request::Status), Response::Status(_)));
    assert_eq!(
        error_code(&authenticate(&mut other, false)),
        ErrorCode::VaultLocked
    );
    let response = waiting.join().unwrap();
    let waited = started.elapsed();
    assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    // The bound (2 s) plus the agent's report grace (5 s), with room for a slow machine.
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    let pid = t.first_pid();
    wait_for("the hung pinentry to be killed and reaped", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

#[test]
fn a_dying_pinentry_answers_locked() {
    let t = ScriptedAgent::start(&["die"], &[], &[]);
    let response = authenticate(&mut t.agent.connect(), true);
    assert_eq!(error_code(&response), ErrorCode::VaultLocked);
    assert_eq!(t.spawns(), 1);
    let pid = t.first_pid();
    wait_for("the dead pinentry to be reaped", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

#[test]
fn the_pinentry_gets_a_clean_environment_its_own_group_and_no_agent_descriptor() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = ScriptedAgent::start(
        &[&pin],
        &[],
        &[
            ("DISPLAY", ":99"),
            ("TERM", "xterm-test"),
            ("AVP_PINENTRY_CANARY", "must-not-leak"),
            ("LC_TIME", "C.UTF-8"),
            // A newline would end the OPTION line and start a command of its own.
            ("GPG_TTY", "/dev/null\nSETERROR injected"),
        ],
    );
    assert!(matches!(
        authenticate(&mut t.agent.connect(), true),
        Response::Authenticated(_)
    ));
    let record = t.record();
    let allowed = [
        "PATH",
        "HOME",
        "LANG",
        "LANGUAGE",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS",
        "TERM",
        "GPG_TTY",
    ];
    let env: Vec<&str> = record
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .collect();
    for pair in &env {
        let key = pair.split('=').next().unwrap();
        // `sh` (the test's wrapper) may add PWD, SHLVL and `_` of its own.
        let from_shell = ["PWD", "SHLVL", "_", "OLDPWD"].contains(&key);
        assert!(
            allowed.contains(&key) || key.starts_with("LC_") || from_shell,
            "leaked {pair}"
        );
    }
    assert!(env.contains(&"DISPLAY=:99"), "{env:?}");
    assert!(env.contains(&"LC_TIME=C.UTF-8"), "{env:?}");
    let fds: Vec<&str> = record
        .lines()
        .filter_map(|l| l.strip_prefix("FD "))
        .collect();
    assert_eq!(fds.len(), 3, "only stdin, stdout and stderr: {fds:?}");
    assert!(
        fds.iter().any(|f| f.starts_with("2 -> /dev/null")),
        "{fds:?}"
    );
    let start = record.lines().find(|l| l.starts_with("START ")).unwrap();
    let [_, pid, pgid] = start.split(' ').collect::<Vec<_>>()[..] else {
        panic!("{start}")
    };
    assert_eq!(pid, pgid, "the pinentry leads its own process group");
    // The session's display and terminal type, from the agent's own environment.
    let commands = t.commands();
    assert!(
        commands.contains(&"OPTION display=:99".to_owned()),
        "{commands:?}"
    );
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("injected") || c.starts_with("OPTION ttyname")),
        "{commands:?}"
    );
    assert!(
        commands.contains(&"OPTION ttytype=xterm-test".to_owned()),
        "{commands:?}"
    );
}

/// The real `pinentry-tty` (Debian package pinentry-tty), on a pseudo-terminal the test
/// holds and names to the agent as its session's terminal (`GPG_TTY`): the agent sends
/// `OPTION ttyname=`, the dialog appears on that terminal, and what is typed there unlocks.
#[test]
fn the_real_pinentry_tty_asks_on_the_sessions_terminal() {
    use std::io::{Read, Write};
    let program = Path::new("/usr/bin/pinentry-tty");
    assert!(
        program.exists(),
        "pinentry-tty is missing: apt-get install pinentry-tty"
    );
    let pty = nix::pty::openpty(None, None).unwrap();
    let tty = nix::unistd::ttyname(&pty.slave).unwrap();
    let mut master = std::fs::File::from(pty.master);
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--pinentry".into(), program.display().to_string()],
        env: vec![
            ("GPG_TTY".into(), tty.display().to_string()),
            ("TERM".into(), "dumb".into()),
        ],
        ..AgentOptions::default()
    });
    agent.init();
    lock(&agent);
    let mut conn = agent.connect();
    let waiting = std::thread::spawn(move || authenticate(&mut conn, true));
    // Read the terminal until the prompt shows, then type the passphrase.
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut reader = master.try_clone().unwrap();
    let sink = std::sync::Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    wait_for("pinentry-tty's prompt", || shown().contains("Passphrase:"));
    assert!(
        shown().contains("wants to use your avp vault"),
        "{}",
        shown()
    );
    master
        .write_all(format!("{TEST_PASSPHRASE}\r").as_bytes())
        .unwrap();
    let response = waiting.join().unwrap();
    assert!(
        matches!(response, Response::Authenticated(_)),
        "{response:?}\n{}",
        shown()
    );
    assert!(
        !shown().contains(TEST_PASSPHRASE),
        "the passphrase was echoed: {}",
        shown()
    );
    drop(pty.slave);
}

#[test]
fn an_unlock_from_elsewhere_answers_the_waiters_at_once() {
    let gates = tempfile::tempdir().unwrap();
    let gate = gates.path().join("open");
    let gate_action = format!("gate={}", gate.display());
    let t = ScriptedAgent::start(
        &[&gate_action, "pin=late"],
        &["--pinentry-timeout", "10m"],
        &[],
    );
    let mut waiter = t.agent.connect();
    let waiting = std::thread::spawn(move || authenticate(&mut waiter, true));
    wait_for("the GETPIN", || t.commands().iter().any(|c| c == "GETPIN"));
    // `avp unlock` in a terminal while the dialog is up.
    assert!(matches!(t.agent.unlock(), Response::Unlocked));
    let response = waiting.join().unwrap();
    assert!(
        matches!(response, Response::Authenticated(_)),
        "{response:?}"
    );
    // The dialog is no longer needed: its window goes away without an answer (the gate
    // never opens) long before its ten minutes.
    let pid = t.first_pid();
    wait_for("the dismissed pinentry to go", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    // A dismissal is not a cancel: no cooldown, the next wait opens a dialog at once.
    assert!(matches!(t.agent.connect().lock(), Response::Locked));
    let mut again = t.agent.connect();
    let waiting = std::thread::spawn(move || authenticate(&mut again, true));
    wait_for("a second dialog", || t.spawns() == 2);
    assert!(matches!(t.agent.unlock(), Response::Unlocked));
    let response = waiting.join().unwrap();
    assert!(
        matches!(response, Response::Authenticated(_)),
        "{response:?}"
    );
}

/// Pipelined requests are answered together (`connection`), except that the answers
/// waiting go out before a request that may take seconds: a STATUS sent in the same write
/// as an AUTHENTICATE that waits for the pinentry is answered while the dialog is up.
#[test]
fn answers_sent_before_a_wait_for_the_pinentry_are_not_held_back() {
    let gates = tempfile::tempdir().unwrap();
    let gate_action = format!("gate={}", gates.path().join("never").display());
    let t = ScriptedAgent::start(&[&gate_action], &["--pinentry-timeout", "10m"], &[]);
    let mut conn = t.agent.connect();
    let mut bytes = Vec::new();
    for request in [Request::Status, authenticate_request(true)] {
        bytes.extend_from_slice(&avp_protocol::frame::encode(&request).unwrap());
    }
    std::io::Write::write_all(&mut conn.stream, &bytes).unwrap();
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let status: Response = avp_protocol::frame::read_message(&mut conn.stream)
        .expect("the STATUS answer while the pinentry is up")
        .unwrap();
    assert!(matches!(status, Response::Status(_)), "{status:?}");
    // The wait itself is still on (it ends only with an unlock): the dialog comes up, and
    // an unlock from elsewhere ends it.
    wait_for("the GETPIN", || t.commands().iter().any(|c| c == "GETPIN"));
    assert!(matches!(t.agent.unlock(), Response::Unlocked));
    let authenticated: Response = avp_protocol::frame::read_message(&mut conn.stream)
        .unwrap()
        .unwrap();
    assert!(
        matches!(authenticated, Response::Authenticated(_)),
        "{authenticated:?}"
    );
}

/// The JSON-lines wire carries the flag too (PROTOCOL.md §12.7.3): an AUTHENTICATE line
/// without `wait_for_unlock` answers `VAULT_LOCKED` at once and asks nobody; one with
/// `"wait_for_unlock":true` unlocks through the same single dialog.
#[test]
fn the_json_wire_waits_for_the_unlock_only_when_asked() {
    let pin = format!("pin={TEST_PASSPHRASE}");
    let t = ScriptedAgent::start(&[&pin], &[], &[]);
    let refused = authenticate(&mut t.agent.connect_json(), false);
    assert_eq!(error_code(&refused), ErrorCode::VaultLocked);
    assert_eq!(t.spawns(), 0, "no pinentry without wait_for_unlock");
    let response = authenticate(&mut t.agent.connect_json(), true);
    assert!(
        matches!(response, Response::Authenticated(_)),
        "{response:?}"
    );
    assert_eq!(t.spawns(), 1);
}
