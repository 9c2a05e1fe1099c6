//! Helpers for the CLI tests: `avp` commands aimed at a [`TestAgent`] in a clean
//! environment, and short-hands for the common steps.

use crate::{TEST_PASSPHRASE, TestAgent, avp_bin};
use assert_cmd::Command;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// An `avp` command in a clean environment: only `PATH` (so `avp run` finds programs) and
/// `AVP_SOCK` = `socket`. It is killed after 60 s, so a hang fails the test.
pub fn avp_at(socket: &Path) -> Command {
    let mut command = Command::new(avp_bin());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AVP_SOCK", socket)
        .timeout(Duration::from_secs(60));
    command
}

/// An `avp` command talking to `agent`.
pub fn avp(agent: &TestAgent) -> Command {
    avp_at(&agent.socket)
}

/// Runs `avp ARGS` against `agent` with `stdin`, whatever its outcome.
pub fn run(agent: &TestAgent, args: &[&str], stdin: &[u8]) -> Output {
    avp(agent)
        .args(args)
        .write_stdin(stdin.to_vec())
        .output()
        .expect("run avp")
}

/// The passphrase of the test vaults as one line, for `--passphrase-stdin`.
pub fn passphrase_line() -> Vec<u8> {
    format!("{TEST_PASSPHRASE}\n").into_bytes()
}

/// `avp init --passphrase-stdin` with the test passphrase and the smallest work factor.
pub fn init(agent: &TestAgent) {
    avp(agent)
        .args(["init", "--passphrase-stdin", "--work-factor", "10"])
        .write_stdin(passphrase_line())
        .assert()
        .success();
}

/// Stores `value` under `name` in `workspace` with `avp set NAME -` (and `--allow-empty`
/// for an empty value), asserting success.
pub fn set_in(agent: &TestAgent, workspace: &str, name: &str, value: &[u8]) {
    let mut args = vec!["-w", workspace, "set", name, "-"];
    if value.is_empty() {
        args.push("--allow-empty");
    }
    avp(agent)
        .args(args)
        .write_stdin(value.to_vec())
        .assert()
        .success();
}

/// Stores `value` under `name` in the default workspace.
pub fn set(agent: &TestAgent, name: &str, value: &[u8]) {
    set_in(agent, "default", name, value);
}

/// The exact bytes `avp get NAME` prints in `workspace`, asserting success.
pub fn get_in(agent: &TestAgent, workspace: &str, name: &str) -> Vec<u8> {
    let output = avp(agent)
        .args(["-w", workspace, "get", name])
        .output()
        .expect("run avp get");
    assert!(
        output.status.success(),
        "avp get {name}: {}",
        text(&output.stderr)
    );
    output.stdout
}

/// The exact bytes `avp get NAME` prints in the default workspace.
pub fn get(agent: &TestAgent, name: &str) -> Vec<u8> {
    get_in(agent, "default", name)
}

/// Bytes as text, for messages and comparisons.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit code, asserting the process exited (was not killed by a signal).
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("avp exited normally")
}

/// Checks that `avp unlock` on the (unlocked) vault of `agent` checks the passphrase: a
/// wrong one is `AUTHENTICATION_FAILED` (exit 1), throttled like a locked unlock (the
/// second attempt waits out the first failure's 100 ms, the right one the second's 200 ms),
/// and leaves the vault unlocked; the right one says the vault was already unlocked.
pub fn assert_unlock_checks_the_passphrase_when_unlocked(agent: &TestAgent) {
    let wrong = || {
        let out = run(agent, &["unlock", "--passphrase-stdin"], b"MARKER-guess\n");
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 1, "a wrong passphrase was accepted: {stderr}");
        assert!(
            stderr.starts_with("avp: wrong passphrase (AUTHENTICATION_FAILED) — "),
            "{stderr}"
        );
        assert!(
            !stderr.contains("MARKER"),
            "the passphrase is echoed: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    };
    // Each delay is measured from before the attempt that caused it: the agent records the
    // failure after that moment, so the next answer cannot come sooner than this bound,
    // however slowly the processes in between run.
    let first = Instant::now();
    wrong();
    let second = Instant::now();
    wrong();
    assert!(
        first.elapsed() >= Duration::from_millis(100),
        "no backoff after a failure"
    );
    avp(agent)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success()
        .stdout("vault already unlocked\n");
    assert!(
        second.elapsed() >= Duration::from_millis(200),
        "the right passphrase skipped the backoff"
    );
    let status = text(&run(agent, &["status"], b"").stdout);
    assert!(status.starts_with("vault:    unlocked"), "{status}");
}

/// Fills the default workspace of `agent` (unlocked) with the workspace of the "LIST fails
/// for good" report — 20 secrets `S00`..`S19`, each a 1,024-byte value with 64 labels of a
/// 128-byte key and a 1,024-byte value, all within the limits — and checks that `avp ls`
/// lists all of them and `avp run` hands all of them to the command. One LIST page of
/// these was larger than a frame: the agent closed the connection and both commands
/// failed.
pub fn assert_a_wide_workspace_lists_and_runs(agent: &TestAgent) {
    let wide: std::collections::BTreeMap<String, String> = (0..64)
        .map(|l| (format!("{l:0128}"), "v".repeat(1024)))
        .collect();
    let wide = avp_protocol::Labels::new(wide).expect("within the limits");
    let mut conn = agent.connect();
    let session = conn.session("default");
    let names: Vec<String> = (0..20).map(|i| format!("S{i:02}")).collect();
    for name in &names {
        let answer = conn.store_full(
            &session,
            name,
            &[b'x'; 1024],
            Some(wide.clone()),
            avp_protocol::ExpiryChange::Keep,
        );
        assert!(
            matches!(answer, avp_protocol::Response::Stored(_)),
            "{answer:?}"
        );
    }
    let listed = run(agent, &["ls"], b"");
    assert_eq!(code(&listed), 0, "avp ls: {}", text(&listed.stderr));
    let got: Vec<String> = text(&listed.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(got, names);
    let out = run(
        agent,
        &["run", "--", "sh", "-c", "env | grep -c '^S[0-9][0-9]=x'"],
        b"",
    );
    assert_eq!(code(&out), 0, "avp run: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "20\n");
}
