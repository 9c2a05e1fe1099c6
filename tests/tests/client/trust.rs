//! The client trusts only its own agent: before the first byte it checks that the socket's
//! directory is its own and private, and that the process serving the socket runs as its
//! uid (`SO_PEERCRED`). A squatter — another user who created the socket directory first,
//! as with `/tmp/avp-$UID` — gets nothing: not the passphrase, not a value, not a `Hello`.
//!
//! The squatter is `avp-squatter` (tests/src/bin) run through `setpriv` as uid 1002; it
//! reports how many bytes each connection sent it.

use avp_client::sources::source_from;
use avp_client::{AsyncClient, Client, Error, SecretName, Untrusted};
use avp_tests::TestAgent;
use avp_tests::cli::{avp_at, code, passphrase_line, text};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use tempfile::TempDir;

const SQUATTER_UID: u32 = 1002;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

/// A fake agent run as [`SQUATTER_UID`] in a directory that user owns, like a squatted
/// `/tmp/avp-$UID`. Killed on drop.
struct Squatter {
    _base: TempDir,
    dir: PathBuf,
    socket: PathBuf,
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Squatter {
    fn start() -> Self {
        let base = tempfile::tempdir().unwrap();
        // The other user must reach its directory and the program.
        chmod(base.path(), 0o711);
        let program = base.path().join("avp-squatter");
        std::fs::copy(env!("CARGO_BIN_EXE_avp-squatter"), &program).unwrap();
        chmod(&program, 0o755);
        let dir = base.path().join("avp-squatted");
        std::fs::create_dir(&dir).unwrap();
        chown(&dir, SQUATTER_UID);
        chmod(&dir, 0o755);
        let socket = dir.join("agent.sock");
        let mut child = Command::new("setpriv")
            .args([
                &format!("--reuid={SQUATTER_UID}"),
                &format!("--regid={SQUATTER_UID}"),
                "--clear-groups",
            ])
            .arg(&program)
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run setpriv (util-linux)");
        let lines = BufReader::new(child.stdout.take().unwrap());
        let mut squatter = Self {
            _base: base,
            dir,
            socket,
            child,
            lines,
        };
        assert_eq!(squatter.next_line(), "listening");
        squatter
    }

    /// The squatter's next report (blocks until it prints one).
    fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// What the squatter received on the connection that just ended.
    fn received(&mut self) -> String {
        self.next_line()
    }

    /// Hands the directory back to root, 0700: only the peer check can tell now.
    fn disguise_directory(&self) {
        chown(&self.dir, 0);
        chmod(&self.dir, 0o700);
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_refused(out: &Output, what: &str, expected: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(code(out), 5, "{what}: {stderr}");
    assert!(stderr.contains(expected), "{what}: {stderr}");
    assert!(stderr.contains("nothing was sent"), "{what}: {stderr}");
}

/// `avp unlock`, `avp set` and `avp run` against the squatter: each refused with exit 5
/// and `expected` in its message, and each connection brought the squatter zero bytes.
fn cli_refuses(squatter: &mut Squatter, expected: &str) {
    let socket = squatter.socket.clone();
    let out = avp_at(&socket)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .output()
        .unwrap();
    assert_refused(&out, "unlock", expected);
    assert_eq!(squatter.received(), "received 0 bytes", "unlock");

    let out = avp_at(&socket)
        .args(["set", "DB_PASSWORD", "-"])
        .write_stdin(b"hunter2".to_vec())
        .output()
        .unwrap();
    assert_refused(&out, "set", expected);
    assert_eq!(squatter.received(), "received 0 bytes", "set");

    let out = avp_at(&socket)
        .args(["run", "--", "sh", "-c", "echo ran"])
        .output()
        .unwrap();
    assert_refused(&out, "run", expected);
    assert!(out.stdout.is_empty(), "the command must not run");
    assert_eq!(squatter.received(), "received 0 bytes", "run");
}

#[test]
fn a_squatted_socket_directory_gets_nothing_from_the_cli() {
    avp_tests::require_root!("it runs a fake agent as another uid");
    let mut squatter = Squatter::start();
    let expected = format!(
        "{}, owned by uid {SQUATTER_UID}, not you (uid 0): something may be impersonating the agent",
        squatter.dir.display()
    );
    cli_refuses(&mut squatter, &expected);
}

#[test]
fn a_socket_served_by_another_uid_gets_nothing_from_the_cli() {
    avp_tests::require_root!("it runs a fake agent as another uid");
    let mut squatter = Squatter::start();
    squatter.disguise_directory();
    let expected = format!(
        "the socket {} is served by uid {SQUATTER_UID}, not you (uid 0): something may be impersonating the agent",
        squatter.socket.display()
    );
    cli_refuses(&mut squatter, &expected);

    // --json carries the code too.
    let out = avp_at(&squatter.socket)
        .args(["--json", "unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .output()
        .unwrap();
    assert_eq!(code(&out), 5);
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(doc["error"]["code"], "UNTRUSTED_SOCKET", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&expected),
        "{doc}"
    );
    assert_eq!(squatter.received(), "received 0 bytes");
}

fn assert_peer_refused(err: &Error, socket: &Path) {
    assert!(
        matches!(
            err,
            Error::UntrustedSocket {
                socket: s,
                reason: Untrusted::PeerUid { uid: SQUATTER_UID, own: 0 },
            } if s == socket
        ),
        "{err:?}"
    );
    assert!(!err.is_unreachable(), "not a missing agent: {err:?}");
}

#[test]
fn the_library_clients_refuse_a_socket_served_by_another_uid() {
    avp_tests::require_root!("it runs a fake agent as another uid");
    let mut squatter = Squatter::start();
    squatter.disguise_directory();
    let socket = squatter.socket.clone();

    let err = Client::connect_to(&socket).unwrap_err();
    assert_peer_refused(&err, &socket);
    assert_eq!(squatter.received(), "received 0 bytes", "sync client");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(AsyncClient::connect_to(&socket))
        .unwrap_err();
    assert_peer_refused(&err, &socket);
    assert_eq!(squatter.received(), "received 0 bytes", "async client");

    // get_secret's agent source, chosen by AVP_SOCK as get_secret chooses it.
    let env = |key: &str| (key == "AVP_SOCK").then(|| OsString::from(&socket));
    let err = source_from(env)
        .unwrap()
        .get(&SecretName::new("DB_PASSWORD").unwrap())
        .unwrap_err();
    assert_peer_refused(&err, &socket);
    assert_eq!(squatter.received(), "received 0 bytes", "get_secret");
}

#[test]
fn the_library_clients_refuse_a_squatted_directory() {
    avp_tests::require_root!("it runs a fake agent as another uid");
    let mut squatter = Squatter::start();
    let socket = squatter.socket.clone();
    let err = Client::connect_to(&socket).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::UntrustedSocket {
                reason: Untrusted::DirectoryOwner {
                    uid: SQUATTER_UID,
                    ..
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(squatter.received(), "received 0 bytes");
}

/// Works for any user: the socket directory of a real agent made group- or world-writable
/// after the agent checked it at start.
#[test]
fn a_socket_directory_others_can_write_is_refused() {
    let agent = TestAgent::start_initialized();
    let run_dir = agent.socket.parent().unwrap().to_path_buf();
    for mode in [0o777, 0o770, 0o1733] {
        chmod(&run_dir, mode);
        let out = avp_at(&agent.socket)
            .args(["--json", "status"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 5, "{mode:o}: {}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(doc["error"]["code"], "UNTRUSTED_SOCKET");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "the socket {} is in {}, which group or others can write (mode {mode:04o})",
                agent.socket.display(),
                run_dir.display()
            )),
            "{message}"
        );
        let err = Client::connect_to(&agent.socket).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UntrustedSocket {
                    reason: Untrusted::DirectoryWritable { mode: m, .. },
                    ..
                } if m == mode
            ),
            "{err:?}"
        );
    }
    // Private again: served as before.
    chmod(&run_dir, 0o700);
    avp_at(&agent.socket).arg("status").assert().success();
}
