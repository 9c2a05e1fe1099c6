//! The `avp` binary without any agent: what it must decide on its own before it sends
//! anything (usage errors, invalid names, oversized values) and how it reports that no
//! agent answers. Tests against a real agent live in the workspace's `tests/` crate; this
//! file also makes `cargo test` build the `avp` binary those tests run.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn avp(args: &[&str], stdin: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_avp"))
        .args(args)
        .env_clear()
        .env("AVP_SOCK", dir.path().join("no-agent.sock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_and_help_exit_0() {
    let out = avp(&["--version"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("avp {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = avp(&["rotate", "--help"], b"");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("A-Z, a-z and 0-9"),
        "--help names the alphabet: {help}"
    );
}

#[test]
fn unknown_flags_exit_2() {
    let out = avp(&["get", "A", "--frobnicate"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: unexpected argument '--frobnicate'"));
}

#[test]
fn no_agent_exits_3() {
    let out = avp(&["ls"], b"");
    assert_eq!(out.status.code(), Some(3));
    let text = stderr(&out);
    assert!(text.starts_with("avp: no agent answers on "), "{text}");
    assert!(
        text.contains("systemctl --user enable --now avp-agent.socket"),
        "{text}"
    );
}

#[test]
fn invalid_names_and_large_values_exit_1_before_connecting() {
    let out = avp(&["get", "no spaces"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("(INVALID_NAME)"), "{}", stderr(&out));
    let out = avp(&["set", "BIG"], &vec![b'x'; 65_537]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("(VALUE_TOO_LARGE)"),
        "{}",
        stderr(&out)
    );
}
