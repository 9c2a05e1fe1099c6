//! `avp-bench`'s command line: `--help` prints the usage and exits 0, an unknown flag or row
//! is a usage error (exit 2), and neither starts the benchmark (which takes minutes: the
//! timeout fails a run that measures instead).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `avp-bench ARGS` in its own process group with its output in files (so helpers it
/// starts cannot hold a pipe open); past 20 s the whole group is killed and the test fails.
fn bench(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_avp-bench"))
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run avp-bench");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let group = Pid::from_raw(i32::try_from(child.id()).unwrap());
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "avp-bench {args:?} ran a benchmark instead of answering: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

#[test]
fn help_prints_the_usage_and_measures_nothing() {
    let out = bench(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("Usage: avp-bench"), "{stdout}");
    assert!(stdout.contains("--quick"), "{stdout}");
    assert!(!stderr.contains("measuring"), "{stderr}");
}

#[test]
fn an_unknown_flag_or_row_is_a_usage_error() {
    for args in [&["--bogus"][..], &["--only", "nosuchrow"]] {
        let out = bench(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("try '--help'"), "{stderr}");
        assert!(!stderr.contains("measuring"), "{stderr}");
    }
}
