//! Paths the agent writes to are not trusted: the audit log and the socket's lock file are
//! refused (the agent does not start, and says why and what to do) when they are symlinks,
//! another user's, or open to other users; the files they point at are never touched. A
//! clean exit leaves no lock file behind.

use avp_tests::require_root;
use avp_tests::{AgentOptions, TestAgent, agent_bin};
use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A private base directory laid out as the harness does (`run/agent.sock`, `vault`,
/// `audit.jsonl`), with the socket directory already there (0700).
fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    fs::set_permissions(dir.path().join("run"), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Starts `avp-agent` on `base`'s paths (the audit log at `audit`) expecting it to refuse
/// to start; returns its stderr. An agent that starts instead is killed and the test fails.
fn refused(base: &Path, audit: &Path) -> String {
    let log = base.join("refused.log");
    let mut child = Command::new(agent_bin())
        .arg("--socket")
        .arg(base.join("run/agent.sock"))
        .arg("--vault")
        .arg(base.join("vault"))
        .arg("--audit-log")
        .arg(audit)
        .env_remove("AVP_SOCK")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the agent started:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    assert!(
        !base.join("run/agent.sock").exists(),
        "a refused start leaves no socket"
    );
    let stderr = fs::read_to_string(&log).unwrap();
    fs::remove_file(&log).unwrap();
    stderr
}

/// A file outside the agent's directories that must come out unchanged.
fn victim() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".bashrc");
    fs::write(&path, b"precious\n").unwrap();
    (dir, path)
}

#[test]
fn an_audit_log_open_to_others_or_linked_elsewhere_is_refused() {
    let dir = base();
    let audit = dir.path().join("audit.jsonl");

    // A pre-created world-readable log: the names of read secrets would leak.
    fs::write(&audit, b"").unwrap();
    chmod(&audit, 0o666);
    let stderr = refused(dir.path(), &audit);
    let fix = format!("chmod 600 {}", audit.display());
    assert!(stderr.contains(&fix), "{stderr}");
    assert_eq!(fs::read(&audit).unwrap(), b"", "nothing was appended");
    fs::remove_file(&audit).unwrap();

    // A symlink to a file of the user's: never followed.
    let (_victim_dir, target) = victim();
    std::os::unix::fs::symlink(&target, &audit).unwrap();
    let stderr = refused(dir.path(), &audit);
    assert!(
        stderr.contains("symlink") && stderr.contains(&*audit.to_string_lossy()),
        "{stderr}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"precious\n");
    fs::remove_file(&audit).unwrap();

    // A directory others can write to (they could swap the log for a link).
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let stderr = refused(dir.path(), &shared.join("audit.jsonl"));
    assert!(
        stderr.contains("chmod go-w") && stderr.contains(&*shared.to_string_lossy()),
        "{stderr}"
    );
    assert!(!shared.join("audit.jsonl").exists(), "no log was created");

    // Fixed: the agent starts and logs there, 0600.
    let agent = TestAgent::start_with(AgentOptions {
        reuse_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    agent.init();
    assert_eq!(
        fs::metadata(&audit).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn an_audit_log_of_another_user_is_refused() {
    require_root!("it gives the audit log to another user");
    let dir = base();
    let audit = dir.path().join("audit.jsonl");
    fs::write(&audit, b"").unwrap();
    chmod(&audit, 0o600);
    nix::unistd::chown(&audit, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let stderr = refused(dir.path(), &audit);
    assert!(stderr.contains("belongs to uid 65534"), "{stderr}");
    assert_eq!(fs::read(&audit).unwrap(), b"");
}

#[test]
fn a_planted_lock_symlink_is_refused_and_its_target_untouched() {
    let dir = base();
    let lock = dir.path().join("run/agent.sock.lock");
    let (_victim_dir, target) = victim();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let stderr = refused(dir.path(), &dir.path().join("audit.jsonl"));
    assert!(
        stderr.contains(&*lock.to_string_lossy()) && stderr.contains("remove it"),
        "{stderr}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"precious\n");

    // A hard link would be written through just the same.
    fs::remove_file(&lock).unwrap();
    fs::hard_link(&target, &lock).unwrap_or_else(|_| {
        // Another file system: a link in the same directory stands in for it.
        let local = dir.path().join("run/other");
        fs::write(&local, b"precious\n").unwrap();
        fs::hard_link(&local, &lock).unwrap();
    });
    let linked_to = fs::read(&lock).unwrap();
    refused(dir.path(), &dir.path().join("audit.jsonl"));
    assert_eq!(fs::read(&lock).unwrap(), linked_to);
    fs::remove_file(&lock).unwrap();

    // Removed: the agent starts.
    let agent = TestAgent::start_with(AgentOptions {
        reuse_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    agent.init();
}

#[test]
fn a_clean_exit_removes_the_lock_file_and_a_new_agent_starts() {
    let dir = base();
    let options = AgentOptions {
        reuse_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let mut agent = TestAgent::start_with(options.clone());
    let lock = dir.path().join("run/agent.sock.lock");
    assert!(lock.exists(), "held while running");
    agent.init();
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!agent.socket.exists());
    assert!(!lock.exists(), "the lock file is left behind");
    let names: Vec<_> = fs::read_dir(dir.path().join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    agent.restart(options);
    let mut conn = agent.connect();
    assert!(conn.status().state == avp_protocol::VaultState::Locked);
}

/// A start-up error is printed once, as the `avp-agent: …` line on stderr, not a second
/// time as a log line (for an error found by the agent itself and one from the vault).
#[test]
fn a_start_up_error_is_printed_once() {
    let dir = base();
    let audit = dir.path().join("audit.jsonl");
    fs::write(&audit, b"").unwrap();
    chmod(&audit, 0o666);
    let stderr = refused(dir.path(), &audit);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("avp-agent: "), "{stderr}");
    fs::remove_file(&audit).unwrap();

    // A vault directory others can write to (the first attempt may have made it).
    fs::create_dir_all(dir.path().join("vault")).unwrap();
    chmod(&dir.path().join("vault"), 0o777);
    let stderr = refused(dir.path(), &audit);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("avp-agent: "), "{stderr}");
    assert!(stderr.contains("vault"), "{stderr}");
}
