//! `avp edit NAME` through the real binary, with scripted editors: the value goes to a
//! private file on a tmpfs, comes back, and the file and its directory are gone afterwards
//! — after a failing editor and after SIGTERM to avp too.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, get, run, set, text};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A private directory on a tmpfs, standing in for `$XDG_RUNTIME_DIR`.
fn runtime_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("avp-test-runtime-")
        .tempdir_in("/dev/shm")
        .expect("a directory in /dev/shm (a tmpfs on Linux)");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Writes an executable editor script whose body is `body` (`$1` is the file, `$REC` a
/// file to record into).
fn editor(agent: &TestAgent, name: &str, body: &str) -> PathBuf {
    let path = agent.dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// `avp ARGS` with the editor, the runtime directory and the record file set.
fn edit(agent: &TestAgent, runtime: &Path, editor: &Path, args: &[&str]) -> (Output, PathBuf) {
    let record = agent.dir.path().join("record");
    let _ = std::fs::remove_file(&record);
    let out = avp(agent)
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("EDITOR", editor)
        .env("REC", &record)
        .output()
        .expect("run avp edit");
    (out, record)
}

const RECORDING: &str = r#"
dir=$(dirname "$1")
{ echo "$1"; stat -c %a "$dir"; stat -c %a "$1"; cat "$1"; } > "$REC"
printf 'swap' > "$dir/.swp""#;

#[test]
fn edit_hands_the_value_over_in_a_private_tmpfs_file_and_wipes_it() {
    let agent = TestAgent::start_initialized();
    let runtime = runtime_dir();
    set(&agent, "KEY", b"old value");
    let editor = editor(
        &agent,
        "ed",
        &format!("{RECORDING}\nprintf 'new value\\n' > \"$1\""),
    );
    let (out, record) = edit(&agent, runtime.path(), &editor, &["edit", "KEY"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "updated KEY in workspace default: version 2\n"
    );
    let record = std::fs::read_to_string(record).unwrap();
    let lines: Vec<&str> = record.lines().collect();
    let file = Path::new(lines[0]);
    assert_eq!(file.file_name().unwrap(), "KEY");
    let dir = file.parent().unwrap();
    assert_eq!(dir.parent().unwrap(), runtime.path());
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("avp-edit-")
    );
    assert_eq!(
        &lines[1..],
        ["700", "600", "old value"],
        "modes, then the old value"
    );
    assert!(!dir.exists(), "the directory is removed");
    assert!(
        entries(runtime.path()).is_empty(),
        "nothing left behind (swap files neither)"
    );
    assert_eq!(
        get(&agent, "KEY"),
        b"new value",
        "the editor's trailing newline is dropped: the old value had none"
    );
}

#[test]
fn unchanged_content_stores_nothing() {
    let agent = TestAgent::start_initialized();
    let runtime = runtime_dir();
    set(&agent, "KEY", b"same");
    let untouched = editor(&agent, "untouched", "true");
    let rewritten = editor(&agent, "rewritten", "printf 'same\\n' > \"$1\"");
    for editor in [untouched, rewritten] {
        let (out, _) = edit(&agent, runtime.path(), &editor, &["edit", "KEY"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "KEY unchanged; nothing was stored\n");
    }
    let (out, _) = edit(
        &agent,
        runtime.path(),
        &agent.dir.path().join("untouched"),
        &["--json", "edit", "KEY"],
    );
    assert_eq!(text(&out.stdout), "{\"changed\":false,\"name\":\"KEY\"}\n");
    let history = text(&run(&agent, &["history", "KEY"], b"").stdout);
    assert_eq!(history.lines().count(), 2, "one version: {history}");
    assert!(entries(runtime.path()).is_empty());
}

#[test]
fn a_new_name_creates_the_secret_and_an_empty_file_creates_nothing() {
    let agent = TestAgent::start_initialized();
    let runtime = runtime_dir();
    let editor_path = editor(&agent, "ed", "[ ! -s \"$1\" ]\nprintf 'fresh\\n' > \"$1\"");
    let (out, _) = edit(
        &agent,
        runtime.path(),
        &editor_path,
        &["--json", "edit", "NEW"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["created"].clone(), doc["version"].clone()),
        (true.into(), 1.into())
    );
    assert_eq!(get(&agent, "NEW"), b"fresh");

    let empty = editor(&agent, "empty", "true");
    let (out, _) = edit(&agent, runtime.path(), &empty, &["edit", "NONE"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "NONE not created: the file was left empty\n"
    );
    assert_eq!(code(&run(&agent, &["get", "NONE"], b"")), 1);
}

#[test]
fn a_failing_editor_stores_nothing_and_leaves_nothing() {
    let agent = TestAgent::start_initialized();
    let runtime = runtime_dir();
    set(&agent, "KEY", b"old");
    let editor = editor(
        &agent,
        "ed",
        &format!("{RECORDING}\nprintf 'half-done' > \"$1\"\nexit 3"),
    );
    let (out, record) = edit(&agent, runtime.path(), &editor, &["edit", "KEY"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "avp: the editor exited with status 3; nothing was stored and the temporary file was \
         wiped (INVALID_REQUEST) — check $VISUAL / $EDITOR and run `avp edit` again\n"
    );
    assert!(record.exists(), "the editor ran");
    assert!(entries(runtime.path()).is_empty());
    assert_eq!(get(&agent, "KEY"), b"old");

    let emptied = editor_emptying(&agent);
    let (out, _) = edit(&agent, runtime.path(), &emptied, &["edit", "KEY"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("is empty; nothing was stored"));
    assert_eq!(get(&agent, "KEY"), b"old");
}

fn editor_emptying(agent: &TestAgent) -> PathBuf {
    editor(agent, "emptying", ": > \"$1\"")
}

/// Runs `avp ARGS` (an `edit`) with an editor that waits, sends `signal` to avp once the
/// editor has its file, and checks the editor was stopped and the file wiped; returns avp's
/// output.
fn edit_stopped_by(agent: &TestAgent, args: &[&str], signal: nix::sys::signal::Signal) -> Output {
    let runtime = runtime_dir();
    let record = agent.dir.path().join("record");
    let _ = std::fs::remove_file(&record);
    // Records its pid and file, then waits as a person at an editor would.
    let editor = editor(
        agent,
        "ed",
        "echo \"$$ $1\" > \"$REC.tmp\"\nmv \"$REC.tmp\" \"$REC\"\nexec sleep 600",
    );
    let avp = Command::new(avp_tests::avp_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AVP_SOCK", &agent.socket)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("EDITOR", &editor)
        .env("REC", &record)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run avp edit");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !record.exists() {
        assert!(Instant::now() < deadline, "the editor never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = std::fs::read_to_string(&record).unwrap();
    let (editor_pid, file) = seen.trim().split_once(' ').unwrap();
    let editor_pid: u32 = editor_pid.parse().unwrap();
    assert!(
        Path::new(file).exists(),
        "the file exists while the editor runs"
    );

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(avp.id() as i32), signal).unwrap();
    let out = avp.wait_with_output().expect("wait for avp");
    assert!(entries(runtime.path()).is_empty(), "the directory is gone");
    assert!(!avp_tests::sys::alive(editor_pid), "the editor was stopped");
    out
}

#[test]
fn sigterm_to_avp_stops_the_editor_and_wipes_the_file() {
    let agent = TestAgent::start_initialized();
    set(&agent, "KEY", b"old");
    let out = edit_stopped_by(&agent, &["edit", "KEY"], nix::sys::signal::Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "avp: stopped by SIGTERM: the editor was ended, the temporary file wiped, nothing stored\n"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(get(&agent, "KEY"), b"old");
}

/// Issue 16: under --json the stop was reported as plain text; it is the JSON error
/// document (code INTERRUPTED), alone on stderr, with the same exit status.
#[test]
fn a_signal_to_avp_edit_under_json_is_the_json_error_document() {
    let agent = TestAgent::start_initialized();
    set(&agent, "KEY", b"old");
    for (signal, status) in [
        (nix::sys::signal::Signal::SIGHUP, 129),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let out = edit_stopped_by(&agent, &["--json", "edit", "KEY"], signal);
        assert_eq!(out.status.code(), Some(status), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let doc: serde_json::Value =
            serde_json::from_str(&stderr).unwrap_or_else(|err| panic!("{err}: {stderr:?}"));
        assert_eq!(
            doc,
            serde_json::json!({"error": {
                "code": "INTERRUPTED",
                "message": format!(
                    "stopped by {signal}: the editor was ended, the temporary file wiped, \
                     nothing stored"
                ),
            }})
        );
        assert_eq!(get(&agent, "KEY"), b"old");
    }
}

#[test]
fn without_a_tmpfs_runtime_directory_edit_refuses_unless_allowed() {
    let agent = TestAgent::start_initialized();
    set(&agent, "KEY", b"old");
    let editor = editor(&agent, "ed", "printf 'new' > \"$1\"");
    let unset = avp(&agent)
        .args(["edit", "KEY"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert_eq!(code(&unset), 1);
    assert_eq!(
        text(&unset.stderr),
        "avp: $XDG_RUNTIME_DIR is not set (or not absolute), so there is no memory-backed \
         directory for the temporary file (INVALID_REQUEST) — use a login session whose $XDG_RUNTIME_DIR is a \
         tmpfs, or pass --allow-disk to accept that the value may be written to the disk\n"
    );
    // The test directory is on the disk the tests run from (the target directory's).
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let on_tmpfs = nix::sys::statfs::statfs(disk.path())
        .unwrap()
        .filesystem_type()
        == nix::sys::statfs::TMPFS_MAGIC;
    if !on_tmpfs {
        let (out, _) = edit(&agent, disk.path(), &editor, &["edit", "KEY"]);
        assert_eq!(code(&out), 1);
        assert!(
            text(&out.stderr).contains("is not a tmpfs"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(get(&agent, "KEY"), b"old");
    }
    let (out, _) = edit(
        &agent,
        disk.path(),
        &editor,
        &["edit", "KEY", "--allow-disk"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(get(&agent, "KEY"), b"new");
    assert!(entries(disk.path()).is_empty());
}
