//! The agent over time: restarts, locking, timers, signals, a second agent, a damaged vault,
//! and the launch modes.

use avp_protocol::{ErrorCode, Passphrase, Request, Response};
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, TEST_PASSPHRASE, TestAgent, agent_bin};
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `avp-agent` with `args` expecting it to refuse to start; returns its stderr.
fn refused_start(args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(agent_bin())
        .args(args)
        .env_remove("AVP_SOCK")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .output()
        .expect("run avp-agent");
    assert!(!output.status.success(), "the second agent started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn secrets_persist_across_a_restart() {
    let mut agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let s = conn.session("default");
    for i in 0..50 {
        assert!(matches!(
            conn.store(&s, &format!("k{i}"), format!("v{i}").as_bytes()),
            Response::Stored(_)
        ));
    }
    assert!(matches!(
        conn.rotate(&s, "k7", b"rotated"),
        Response::Rotated(_)
    ));
    assert!(matches!(conn.delete(&s, "k9"), Response::Deleted(_)));
    agent.restart(AgentOptions::default());
    let mut conn = agent.connect();
    assert_eq!(
        code_of(&conn.authenticate("default", None)),
        Some(ErrorCode::VaultLocked)
    );
    assert!(matches!(agent.unlock(), Response::Unlocked));
    let s = conn.session("default");
    assert_eq!(conn.value(&s, "k0"), Ok(b"v0".to_vec()));
    assert_eq!(conn.value(&s, "k7"), Ok(b"rotated".to_vec()));
    assert_eq!(conn.value(&s, "k9"), Err(ErrorCode::SecretNotFound));
    assert_eq!(conn.names(&s).len(), 49);
    match conn.history(&s, "k7") {
        Response::History(h) => assert_eq!(h.versions.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lock_ends_sessions_and_wipes_the_plaintext() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let s = conn.session("default");
    assert!(matches!(conn.store(&s, "k", b"v"), Response::Stored(_)));
    assert!(
        conn.status().hardening.locked_memory_bytes > 0
            || conn.status().hardening.memlock_limit == Some(0)
    );
    assert!(matches!(conn.lock(), Response::Locked));
    assert_eq!(conn.value(&s, "k"), Err(ErrorCode::VaultLocked));
    let status = conn.status();
    assert_eq!(status.state, avp_protocol::VaultState::Locked);
    assert_eq!((status.secrets, status.sessions), (0, 0));
    assert!(matches!(agent.unlock(), Response::Unlocked));
    assert_eq!(
        conn.value(&s, "k"),
        Err(ErrorCode::SessionTerminated),
        "locking ended it"
    );
    let fresh = conn.session("default");
    assert_eq!(conn.value(&fresh, "k"), Ok(b"v".to_vec()));
}

#[test]
fn the_idle_timer_locks_and_activity_resets_it() {
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--idle-lock".into(), "2s".into()],
        ..Default::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let s = conn.session("default");
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(
            conn.value(&s, "k"),
            Err(ErrorCode::SecretNotFound),
            "activity keeps it open"
        );
    }
    let idle = conn.status().idle_lock_in_seconds.expect("timer running");
    assert!(idle <= 2);
    wait_until("the idle lock", Duration::from_secs(5), || {
        conn.status().state == avp_protocol::VaultState::Locked
    });
}

#[test]
fn the_maximum_unlock_lifetime_locks_despite_activity() {
    let agent = TestAgent::start_with(AgentOptions {
        args: vec![
            "--max-unlock".into(),
            "2s".into(),
            "--idle-lock".into(),
            "0".into(),
        ],
        ..Default::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let s = conn.session("default");
    let started = Instant::now();
    while conn.status().state == avp_protocol::VaultState::Unlocked {
        let _ = conn.value(&s, "k");
        assert!(started.elapsed() < Duration::from_secs(6), "never locked");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "locked too early"
    );
}

#[test]
fn sigusr1_locks_and_sigterm_removes_the_socket_and_exits_zero() {
    let mut agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    agent.signal(Signal::SIGUSR1);
    wait_until("SIGUSR1 lock", Duration::from_secs(5), || {
        conn.status().state == avp_protocol::VaultState::Locked
    });
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!agent.socket.exists(), "the socket it created is removed");
}

#[test]
fn every_lock_and_unlock_reaches_the_audit_log_with_its_reason() {
    let mut agent = TestAgent::start_initialized();
    let pid = agent.pid();
    let mut conn = agent.connect();
    agent.signal(Signal::SIGUSR1);
    wait_until("SIGUSR1 lock", Duration::from_secs(5), || {
        conn.status().state == avp_protocol::VaultState::Locked
    });
    drop(conn);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)), Some(0));
    let log = std::fs::read_to_string(&agent.audit_log).unwrap();
    let changes: Vec<(String, String)> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| {
            line["operation"]
                .as_str()
                .is_some_and(|op| op.starts_with("VAULT_"))
        })
        .map(|line| {
            assert_eq!(line["outcome"], "OK", "{line}");
            assert_eq!(line["pid"], pid, "the agent's own line: {line}");
            (
                line["operation"].as_str().unwrap().to_owned(),
                line["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("VAULT_UNLOCKED".to_owned(), "unlocked".to_owned()),
            ("VAULT_LOCKED".to_owned(), "signal".to_owned()),
        ],
        "{log}"
    );
}

#[test]
fn a_second_agent_on_the_same_socket_or_vault_refuses() {
    let agent = TestAgent::start_initialized();
    let other = tempfile::tempdir().unwrap();
    let same_socket = refused_start(&[
        "--socket".as_ref(),
        agent.socket.as_os_str(),
        "--vault".as_ref(),
        other.path().join("vault").as_os_str(),
        "--audit-log".as_ref(),
        other.path().join("audit").as_os_str(),
    ]);
    assert!(same_socket.contains("already"), "{same_socket}");
    let same_vault = refused_start(&[
        "--socket".as_ref(),
        other.path().join("run/agent.sock").as_os_str(),
        "--vault".as_ref(),
        agent.vault.as_os_str(),
        "--audit-log".as_ref(),
        other.path().join("audit").as_os_str(),
    ]);
    assert!(
        same_vault.contains("already owns the vault"),
        "{same_vault}"
    );
    let mut conn = agent.connect();
    assert!(
        matches!(conn.call(&Request::Discover), Response::Discover(_)),
        "the first one is unharmed"
    );
}

#[test]
fn a_stale_socket_is_replaced() {
    let mut agent = TestAgent::start_initialized();
    agent.kill();
    assert!(
        agent.socket.exists(),
        "SIGKILL leaves the socket file behind"
    );
    agent.restart(AgentOptions::default());
    let mut conn = agent.connect();
    assert!(matches!(
        conn.call(&Request::Discover),
        Response::Discover(_)
    ));
}

#[test]
fn a_socket_directory_open_to_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = refused_start(&[
        "--socket".as_ref(),
        run.join("agent.sock").as_os_str(),
        "--vault".as_ref(),
        dir.path().join("vault").as_os_str(),
        "--audit-log".as_ref(),
        dir.path().join("audit").as_os_str(),
    ]);
    assert!(stderr.contains("chmod 700"), "{stderr}");
}

fn flip_a_byte(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() * 2 / 3;
    bytes[middle] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn unlock_code(agent: &TestAgent) -> Option<ErrorCode> {
    code_of(&agent.unlock())
}

#[test]
fn a_damaged_vault_fails_unlock_and_is_left_untouched() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let s = conn.session("default");
    for i in 0..3 {
        assert!(matches!(
            conn.store(&s, &format!("k{i}"), b"v"),
            Response::Stored(_)
        ));
    }
    assert!(matches!(conn.lock(), Response::Locked));
    let snapshot = agent.vault.join("snapshot.age");
    let journal = std::fs::read_dir(&agent.vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal.")
        })
        .expect("a journal");
    for file in [&snapshot, &journal] {
        let original = std::fs::read(file).unwrap();
        let damaged = flip_a_byte(file);
        assert_eq!(
            unlock_code(&agent),
            Some(ErrorCode::IntegrityError),
            "{}",
            file.display()
        );
        assert_eq!(std::fs::read(file).unwrap(), damaged, "left as it was");
        std::fs::write(file, &original).unwrap();
    }
    // A truncated snapshot, and another vault's snapshot.
    let original = std::fs::read(&snapshot).unwrap();
    std::fs::write(&snapshot, &original[..original.len() / 2]).unwrap();
    assert_eq!(unlock_code(&agent), Some(ErrorCode::IntegrityError));
    let stranger = TestAgent::start_initialized();
    std::fs::copy(stranger.vault.join("snapshot.age"), &snapshot).unwrap();
    assert_eq!(unlock_code(&agent), Some(ErrorCode::IntegrityError));
    // A damaged identity: wrong passphrase or corrupt, never a crash.
    std::fs::write(&snapshot, &original).unwrap();
    let identity = agent.vault.join("identity.age");
    let original_identity = std::fs::read(&identity).unwrap();
    flip_a_byte(&identity);
    let code = unlock_code(&agent);
    assert!(
        matches!(
            code,
            Some(ErrorCode::IntegrityError | ErrorCode::AuthenticationFailed)
        ),
        "{code:?}"
    );
    std::fs::write(&identity, &original_identity).unwrap();
    // Restored: everything is there, and the agent never stopped serving.
    assert!(matches!(agent.unlock(), Response::Unlocked));
    let s = conn.session("default");
    assert_eq!(conn.names(&s), ["k0", "k1", "k2"]);
}

#[test]
fn change_passphrase_rewraps_the_identity_only() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let s = conn.session("default");
    assert!(matches!(conn.store(&s, "k", b"v"), Response::Stored(_)));
    let snapshot_before = std::fs::read(agent.vault.join("snapshot.age")).unwrap();
    let wrong_old = conn.call(&Request::ChangePassphrase {
        old: Passphrase::new("not it"),
        new: Passphrase::new("new pass"),
    });
    assert_eq!(code_of(&wrong_old), Some(ErrorCode::AuthenticationFailed));
    std::thread::sleep(Duration::from_millis(150)); // the backoff after one wrong guess
    let changed = conn.call(&Request::ChangePassphrase {
        old: Passphrase::new(TEST_PASSPHRASE),
        new: Passphrase::new("new pass"),
    });
    assert!(
        matches!(changed, Response::PassphraseChanged),
        "{changed:?}"
    );
    assert_eq!(
        std::fs::read(agent.vault.join("snapshot.age")).unwrap(),
        snapshot_before
    );
    assert!(matches!(conn.lock(), Response::Locked));
    assert_eq!(unlock_code(&agent), Some(ErrorCode::AuthenticationFailed));
    std::thread::sleep(Duration::from_millis(150));
    let unlocked = conn.call(&Request::Unlock {
        passphrase: Passphrase::new("new pass"),
    });
    assert!(matches!(unlocked, Response::Unlocked));
    let s = conn.session("default");
    assert_eq!(conn.value(&s, "k"), Ok(b"v".to_vec()));
}

/// `avp-agent` on `socket`, with its vault and audit log in `dir` (suffixed `tag`).
fn agent_on(socket: &Path, dir: &Path, tag: &str) -> Command {
    let mut command = Command::new(agent_bin());
    command
        .arg("--socket")
        .arg(socket)
        .arg("--vault")
        .arg(dir.join(format!("vault{tag}")))
        .arg("--audit-log")
        .arg(dir.join(format!("audit{tag}")))
        .env_remove("AVP_SOCK");
    command
}

#[test]
fn run_mode_sets_avp_sock_and_exits_with_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/agent.sock");
    let output = agent_on(&socket, dir.path(), "")
        .args([
            "--",
            "sh",
            "-c",
            "test -S \"$AVP_SOCK\" && echo \"$AVP_SOCK\"; exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        socket.to_string_lossy()
    );
    assert!(
        !socket.exists(),
        "the agent cleaned up after the command ended"
    );
}

#[test]
fn daemon_mode_prints_shell_lines_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/agent.sock");
    let output = agent_on(&socket, dir.path(), "")
        .arg("--daemon")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let expected = format!("AVP_SOCK={}; export AVP_SOCK;\n", socket.display());
    assert!(text.starts_with(&expected), "{text}");
    let pid: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("AVP_AGENT_PID="))
        .and_then(|l| l.split(';').next())
        .and_then(|p| p.parse().ok())
        .expect("a pid line");
    let mut conn = avp_tests::Conn::raw(&socket);
    conn.hello();
    assert!(matches!(
        conn.call(&Request::Discover),
        Response::Discover(_)
    ));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    wait_until("the daemon to exit", Duration::from_secs(10), || {
        !socket.exists()
    });
    let csh = agent_on(&dir.path().join("run/csh.sock"), dir.path(), "2")
        .args(["--daemon", "-c"])
        .output()
        .unwrap();
    let text = String::from_utf8(csh.stdout).unwrap();
    assert!(text.starts_with("setenv AVP_SOCK "), "{text}");
    let pid: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("setenv AVP_AGENT_PID "))
        .and_then(|l| l.trim_end_matches(';').parse().ok())
        .expect("a pid line");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM).unwrap();
}

#[test]
fn a_small_memlock_limit_is_warned_once_and_the_agent_carries_on() {
    // Root ignores RLIMIT_MEMLOCK (CAP_IPC_LOCK): drop the capability so the limit binds as
    // it does for a normal user.
    let mut wrapper: Vec<String> = Vec::new();
    if nix::unistd::geteuid().is_root() {
        wrapper.extend(
            [
                "setpriv",
                "--bounding-set",
                "-ipc_lock",
                "--inh-caps",
                "-ipc_lock",
            ]
            .map(String::from),
        );
    }
    wrapper.extend(["prlimit", "--memlock=65536"].map(String::from));
    let agent = TestAgent::start_with(AgentOptions {
        wrapper,
        ..Default::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let s = conn.session("default");
    let value = vec![0x42u8; 8 << 10];
    for i in 0..40 {
        assert!(matches!(
            conn.store(&s, &format!("k{i}"), &value),
            Response::Stored(_)
        ));
    }
    assert_eq!(conn.value(&s, "k39"), Ok(value), "served despite the limit");
    let status = conn.status();
    assert_eq!(status.hardening.memlock_limit, Some(65_536));
    assert!(
        status.hardening.locked_memory_bytes <= 65_536,
        "{:?}",
        status.hardening
    );
    let warnings = agent.logs().matches("cannot lock memory").count();
    assert_eq!(warnings, 1, "warned exactly once:\n{}", agent.logs());
}

/// A SIGTERM sent the instant the socket appears — before the agent has even said it is
/// ready — still stops it cleanly (exit 0, socket removed): the agent blocks its signals
/// before binding, so the signal waits for the signal thread instead of killing it. Before
/// that, a SIGTERM in the window between the bind and the handlers killed the agent and
/// left its socket behind. Several rounds, since the window was short.
#[test]
fn a_sigterm_the_moment_the_socket_appears_still_stops_cleanly() {
    use std::os::unix::process::ExitStatusExt;
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/agent.sock");
        let mut child = agent_on(&socket, dir.path(), "")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // Spin, not sleep: the signal must land as close to the bind as possible.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the agent never bound its socket"
            );
            std::hint::spin_loop();
        }
        nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "round {round}: the agent must stop cleanly on an early SIGTERM"
        );
        assert!(
            !socket.exists(),
            "round {round}: the socket is removed after an early SIGTERM"
        );
    }
}

/// The agent blocks its signals on every thread, but the `-- CMD` child starts with none
/// blocked: a command that could not be stopped with Ctrl-C or SIGTERM would be a bug.
#[test]
fn the_run_mode_command_starts_with_no_signal_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/agent.sock");
    let output = agent_on(&socket, dir.path(), "")
        .args(["--", "sh", "-c", "grep '^SigBlk:' /proc/self/status"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let line = String::from_utf8_lossy(&output.stdout);
    let mask = line.trim().trim_start_matches("SigBlk:").trim();
    assert!(
        mask.bytes().all(|b| b == b'0'),
        "the command inherited blocked signals: {line}"
    );
}

/// `avp-agent -- CMD` answers a command it cannot start as a shell (and `avp run`) does:
/// 127 when it is not found, 126 when it is found but cannot be run, and says so once;
/// the socket is removed as after any other end of the command.
#[test]
fn run_mode_exits_127_for_a_missing_command_and_126_for_one_that_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/agent.sock");
    let not_runnable = dir.path().join("not-runnable");
    std::fs::write(&not_runnable, b"#!/bin/sh\n").unwrap();
    for (program, code) in [
        (dir.path().join("nonexistent"), 127),
        (not_runnable.clone(), 126),
    ] {
        let output = agent_on(&socket, dir.path(), "")
            .arg("--")
            .arg(&program)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        let said = format!("avp-agent: cannot run {}: ", program.display());
        assert_eq!(stderr.matches(&said).count(), 1, "{stderr}");
        assert!(!socket.exists(), "the socket is removed: {stderr}");
    }
}
