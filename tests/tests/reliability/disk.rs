//! Disk faults: the vault directory turning read-only, a full filesystem (`ENOSPC`) and a
//! file-size limit (`EFBIG`). In every case a write that cannot be made durable answers
//! `BACKEND_ERROR` and is not applied, earlier secrets stay readable, what the agent serves
//! stays exactly what is on disk (checked by restarting it), and writes work again as soon as
//! the fault goes — without a restart.
//!
//! Root ignores permission bits, so "read-only" is `chattr +i` (which binds root too), and
//! the full disk is a small tmpfs mounted on the vault directory. Tests run as root.

use avp_protocol::{ErrorCode, Response, SessionId};
use avp_tests::require_root;
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().expect(program);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `chattr +i` on every file of a directory and on the directory; undone on drop.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn vault(dir: &Path) -> Self {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != ".lock")
            .collect();
        paths.push(dir.to_path_buf());
        for path in &paths {
            run("chattr", &["+i", path.to_str().unwrap()]);
        }
        Self(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(path).status();
        }
    }
}

/// A tmpfs of `size` mounted on `dir`; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let options = format!("size={size},mode=0700");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &options,
                "avp-test",
                dir.to_str().unwrap(),
            ],
        );
        Self(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let options = format!("remount,size={size}");
        run("mount", &["-o", &options, self.0.to_str().unwrap()]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every secret of a workspace with its version and value, as the agent serves them.
type State = BTreeMap<String, (u32, Vec<u8>)>;

fn state(conn: &mut Conn, session: &SessionId) -> State {
    conn.names(session)
        .into_iter()
        .map(|name| match conn.retrieve(session, &name, None) {
            Response::Retrieved(s) => (name, (s.version, s.value.expose_secret().to_vec())),
            other => panic!("{name}: {other:?}"),
        })
        .collect()
}

/// A client that keeps its own record of what the agent acknowledged.
struct Client {
    conn: Conn,
    session: SessionId,
    acked: State,
}

impl Client {
    fn new(agent: &TestAgent) -> Self {
        let mut conn = agent.connect();
        let session = conn.session("disk");
        Self {
            conn,
            session,
            acked: State::new(),
        }
    }

    /// STORE; on success the write joins the record. Returns the error code, if any.
    fn store(&mut self, name: &str, value: &[u8]) -> Option<ErrorCode> {
        match self.conn.store(&self.session, name, value) {
            Response::Stored(r) => {
                self.acked.insert(name.into(), (r.version, value.to_vec()));
                None
            }
            other => Some(code_of(&other).expect("an error")),
        }
    }

    /// What the agent serves must be exactly what it acknowledged.
    fn assert_serves_acked(&mut self, when: &str) {
        assert_eq!(state(&mut self.conn, &self.session), self.acked, "{when}");
    }
}

/// Restarts the agent and checks the disk holds exactly the acknowledged writes.
fn assert_disk_holds(agent: &mut TestAgent, acked: &State, options: AgentOptions) {
    agent.restart(options);
    assert!(
        matches!(agent.unlock(), Response::Unlocked),
        "{}",
        agent.logs()
    );
    let mut conn = agent.connect();
    let session = conn.session("disk");
    assert_eq!(&state(&mut conn, &session), acked, "after a restart");
}

#[test]
fn a_read_only_vault_refuses_writes_serves_reads_and_recovers() {
    require_root!("chattr +i");
    let mut agent = TestAgent::start_initialized();
    let mut client = Client::new(&agent);
    for i in 0..5 {
        assert_eq!(client.store(&format!("k{i}"), b"before"), None);
    }
    {
        let _read_only = Immutable::vault(&agent.vault);
        for (name, value) in [("k0", &b"changed"[..]), ("new", b"v")] {
            assert_eq!(client.store(name, value), Some(ErrorCode::BackendError));
        }
        let rotate = client.conn.rotate(&client.session, "k1", b"rotated");
        assert_eq!(code_of(&rotate), Some(ErrorCode::BackendError));
        let delete = client.conn.delete(&client.session, "k2");
        assert_eq!(code_of(&delete), Some(ErrorCode::BackendError));
        client.assert_serves_acked("refused writes are not applied");

        // Unlocking needs no write access: a read-only vault can be unlocked and read.
        assert!(matches!(client.conn.lock(), Response::Locked));
        let unlocked = agent.unlock();
        assert!(
            matches!(unlocked, Response::Unlocked),
            "unlock of a read-only vault: {unlocked:?}"
        );
        client.session = client.conn.session("disk");
        client.assert_serves_acked("after unlocking the read-only vault");
        assert_eq!(
            client.store("k0", b"still no"),
            Some(ErrorCode::BackendError)
        );
    }
    // The fault is gone: the same agent writes again, and every write is on disk.
    assert_eq!(client.store("k0", b"after"), None);
    assert_eq!(client.store("new", b"v"), None);
    client.assert_serves_acked("after the fault");
    assert_disk_holds(&mut agent, &client.acked, AgentOptions::default());
}

#[test]
fn a_full_disk_answers_backend_error_and_loses_nothing() {
    require_root!("it mounts a tmpfs");
    let base = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&base.path().join("vault"), "256k");
    let options = AgentOptions {
        reuse_dir: Some(base.path().to_path_buf()),
        ..Default::default()
    };
    let mut agent = TestAgent::start_with(options.clone());
    agent.init();
    let mut client = Client::new(&agent);
    let value = vec![0x5a; 40 << 10];
    let mut full = None;
    for i in 0..20 {
        if let Some(code) = client.store(&format!("big{i}"), &value) {
            full = Some((i, code));
            break;
        }
    }
    let (written, code) = full.expect("a 256 KiB filesystem fills up");
    assert_eq!(code, ErrorCode::BackendError);
    assert!(written > 0, "some writes fit");
    // More refusals, including a small write and an update: nothing changes.
    assert_eq!(client.store("big0", &value), Some(ErrorCode::BackendError));
    client.assert_serves_acked("on a full disk");
    // Free the space: the same agent writes again.
    disk.resize("4m");
    assert_eq!(client.store(&format!("big{written}"), &value), None);
    assert_eq!(client.store("big0", b"small now"), None);
    client.assert_serves_acked("after the disk was enlarged");
    assert_disk_holds(&mut agent, &client.acked, options);
    drop(agent);
}

#[test]
fn a_file_size_limit_answers_backend_error_instead_of_killing_the_agent() {
    let mut agent = TestAgent::start_initialized();
    let mut client = Client::new(&agent);
    assert_eq!(client.store("small", b"fits"), None);
    let journal = std::fs::read_dir(&agent.vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("journal."))
        .expect("a journal");
    let size = std::fs::metadata(&journal).unwrap().len();
    let audit = std::fs::metadata(&agent.audit_log).map_or(0, |m| m.len());
    // Room for a few small writes more, not for a 32 KiB one. (The kernel answers a write
    // past RLIMIT_FSIZE with EFBIG and SIGXFSZ, whose default action kills the process.)
    let limit = size.max(audit) + 4096;
    let pid = agent.pid().to_string();
    // Soft limit only: raising a hard limit again would take CAP_SYS_RESOURCE.
    run(
        "prlimit",
        &["--pid", &pid, &format!("--fsize={limit}:unlimited")],
    );
    let big = vec![7u8; 32 << 10];
    assert_eq!(client.store("big", &big), Some(ErrorCode::BackendError));
    assert!(
        avp_tests::sys::alive(agent.pid()),
        "the agent survived EFBIG"
    );
    assert_eq!(client.store("small", b"still fits"), None);
    client.assert_serves_acked("under the size limit");
    run("prlimit", &["--pid", &pid, "--fsize=unlimited:unlimited"]);
    assert_eq!(client.store("big", &big), None);
    client.assert_serves_acked("after the limit was lifted");
    assert_disk_holds(&mut agent, &client.acked, AgentOptions::default());
}
