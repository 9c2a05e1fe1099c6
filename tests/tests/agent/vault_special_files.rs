//! Vault files that are not regular files, and names planted in the vault directory.
//!
//! A FIFO, a symlink (to `/dev/zero` or anywhere else), a device or a directory where a
//! vault file belongs is answered at once with `INTEGRITY_ERROR` naming the file: never a
//! hang (a FIFO blocks an `open` and a `read` for ever, and every later unlock would queue
//! behind it) and never a read without end. A symlink planted under a temp name is never
//! written through.

use avp_protocol::{ErrorCode, Response};
use avp_tests::cli::{avp, passphrase_line, text};
use avp_tests::{AgentOptions, TEST_PASSPHRASE, TestAgent};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An agent with a vault holding `k` = `v` in its snapshot and `j` = `w` in its journal,
/// locked. Its address space is capped, so a regression that reads `/dev/zero` to the end
/// fails this test instead of exhausting the machine's memory.
fn locked_vault() -> TestAgent {
    let agent = TestAgent::start_with(AgentOptions {
        wrapper: ["prlimit", "--as=4294967296"].map(String::from).to_vec(),
        ..Default::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let s = conn.session("default");
    assert!(matches!(conn.store(&s, "j", b"w"), Response::Stored(_)));
    assert!(matches!(conn.lock(), Response::Locked));
    agent
}

fn journal_of(agent: &TestAgent) -> PathBuf {
    std::fs::read_dir(&agent.vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal.")
        })
        .expect("a journal")
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// Unlock must answer `INTEGRITY_ERROR` within seconds, with a message naming `file`.
fn assert_refused_at_once(agent: &TestAgent, file: &str, what: &str) {
    let started = Instant::now();
    let mut conn = avp_tests::Conn::raw(&agent.socket);
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.hello();
    let answer = conn.try_call(&avp_protocol::Request::Unlock {
        passphrase: avp_protocol::Passphrase::new(TEST_PASSPHRASE),
    });
    let Some(Response::Error(error)) = answer else {
        panic!(
            "{what}: expected INTEGRITY_ERROR, got {answer:?}\n{}",
            agent.logs()
        );
    };
    assert_eq!(error.code, ErrorCode::IntegrityError, "{what}: {error:?}");
    assert!(error.message.contains(file), "{what}: {}", error.message);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{what}: answered only after {:?}",
        started.elapsed()
    );
}

/// Moves `path` aside, lets `plant` put something else there, checks the refusal, and
/// puts the original back.
fn with_replaced(agent: &TestAgent, path: &Path, file: &str, what: &str, plant: impl Fn(&Path)) {
    let aside = path.with_extension("aside");
    std::fs::rename(path, &aside).unwrap();
    plant(path);
    assert_refused_at_once(agent, file, what);
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        std::fs::remove_dir(path).unwrap();
    } else {
        std::fs::remove_file(path).unwrap();
    }
    std::fs::rename(&aside, path).unwrap();
}

#[test]
fn special_vault_files_are_integrity_errors_at_once() {
    let agent = locked_vault();
    let snapshot = agent.vault.join("snapshot.age");
    let journal = journal_of(&agent);
    let identity = agent.vault.join("identity.age");

    with_replaced(&agent, &snapshot, "snapshot.age", "fifo snapshot", mkfifo);
    with_replaced(&agent, &journal, "journal", "fifo journal", mkfifo);
    with_replaced(&agent, &identity, "identity.age", "fifo identity", mkfifo);
    let zero = |p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap();
    with_replaced(&agent, &journal, "journal", "journal -> /dev/zero", zero);
    with_replaced(
        &agent,
        &snapshot,
        "snapshot.age",
        "snapshot -> /dev/zero",
        zero,
    );
    // A symlink to the very file it replaces is refused too: links are not followed.
    let original = journal.with_extension("aside");
    let link = |p: &Path| std::os::unix::fs::symlink(&original, p).unwrap();
    with_replaced(&agent, &journal, "journal", "journal -> its own data", link);
    let dir = |p: &Path| std::fs::create_dir(p).unwrap();
    with_replaced(&agent, &snapshot, "snapshot.age", "directory snapshot", dir);
    with_replaced(&agent, &journal, "journal", "directory journal", dir);

    // Repaired: the same agent unlocks and serves everything.
    let output = avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut conn = agent.connect();
    let s = conn.session("default");
    assert_eq!(conn.value(&s, "j"), Ok(b"w".to_vec()));
}

#[test]
fn the_cli_reports_a_fifo_snapshot_as_an_integrity_error() {
    let agent = locked_vault();
    let snapshot = agent.vault.join("snapshot.age");
    std::fs::rename(&snapshot, agent.vault.join("kept")).unwrap();
    mkfifo(&snapshot);
    let output = avp(&agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("INTEGRITY_ERROR") && stderr.contains("snapshot.age"),
        "{stderr}"
    );
}

#[test]
fn a_planted_identity_temp_symlink_is_not_written_through() {
    let mut agent = TestAgent::start_initialized();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("profile");
    std::fs::write(&victim, b"precious\n").unwrap();
    let planted = agent.vault.join("identity.age.tmp");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    let lines = format!("{TEST_PASSPHRASE}\nnew passphrase\n");
    let output = avp(&agent)
        .args(["passwd", "--passphrase-stdin"])
        .write_stdin(lines.into_bytes())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious\n",
        "target untouched"
    );
    let identity = std::fs::symlink_metadata(agent.vault.join("identity.age")).unwrap();
    assert!(identity.is_file(), "identity.age is a regular file");

    // A crash's leftovers are removed when an agent next takes the vault; the new
    // passphrase unlocks.
    std::fs::write(agent.vault.join("snapshot.age.tmp.123"), b"half written").unwrap();
    agent.restart(AgentOptions::default());
    assert!(
        std::fs::symlink_metadata(&planted).is_err(),
        "stale temp removed"
    );
    assert!(!agent.vault.join("snapshot.age.tmp.123").exists());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    let unlocked = agent.connect().call(&avp_protocol::Request::Unlock {
        passphrase: avp_protocol::Passphrase::new("new passphrase"),
    });
    assert!(matches!(unlocked, Response::Unlocked), "{unlocked:?}");
}
