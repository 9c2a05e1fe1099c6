//! `avp` hardens itself as the agent does: no core file (`RLIMIT_CORE=0`) and not dumpable
//! (`PR_SET_DUMPABLE=0`), from the start of `main`, since it holds passphrases and values
//! too.
//!
//! Observed from outside on a running `avp import -` blocked reading its standard input
//! (where a value would be arriving). Dumpability has no `/proc` field of its own, but the
//! kernel gives the files under `/proc/<pid>/` of a non-dumpable process to root (the
//! directory itself keeps the process's uid): so `avp` runs as uid 1002 (through
//! `setpriv`), and its `/proc/<pid>/status` must belong to root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OTHER_UID: u32 = 1002;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// True once `pid` sits in `read(0, …)`: `/proc/<pid>/syscall` names the call and its
/// first argument.
fn blocked_reading_stdin(pid: u32) -> bool {
    let Ok(syscall) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return false;
    };
    let mut fields = syscall.split_whitespace();
    fields.next() == Some(&nix::libc::SYS_read.to_string()) && fields.next() == Some("0x0")
}

#[test]
fn a_running_avp_has_no_core_limit_and_is_not_dumpable() {
    avp_tests::require_root!("it runs avp as another uid");
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o711);
    let avp = dir.path().join("avp");
    std::fs::copy(avp_tests::avp_bin(), &avp).unwrap();
    chmod(&avp, 0o755);
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER_UID}"),
            &format!("--regid={OTHER_UID}"),
            "--clear-groups",
        ])
        .arg(&avp)
        .args(["import", "-", "--format", "dotenv"])
        .env_clear()
        .env("AVP_SOCK", dir.path().join("none.sock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run setpriv (util-linux)");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !blocked_reading_stdin(pid) {
        assert!(Instant::now() < deadline, "avp never read its stdin");
        std::thread::sleep(Duration::from_millis(10));
    }

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&OTHER_UID.to_string())),
        "avp runs as the other uid: {status}"
    );
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    // Let it finish before asserting, so a failure leaves no process behind.
    drop(child.stdin.take());
    let _ = child.kill();
    child.wait().unwrap();

    assert_eq!(
        owner, 0,
        "/proc/{pid}/status belongs to root only when not dumpable"
    );
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let values: Vec<&str> = core.split_whitespace().skip(4).take(2).collect();
    assert_eq!(values, ["0", "0"], "{core}");
}
