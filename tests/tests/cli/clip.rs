//! `avp get NAME --clip`: the value reaches a real X clipboard (Xvfb + xclip), never stdout or
//! argv, and the detached clearer empties the clipboard after the delay only if it still
//! holds that value.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, set, text};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A virtual X server on a free display (it picks the number itself: `-displayfd`).
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "320x240x8",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt install xvfb; .ci/run installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("Xvfb prints its display");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not start");
        Self {
            child,
            display: format!(":{number}"),
        }
    }

    /// What xclip reads from the CLIPBOARD selection (empty when nothing owns it).
    fn clipboard(&self) -> Vec<u8> {
        let out = Command::new("xclip")
            .args(["-selection", "clipboard", "-out"])
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .output()
            .expect("xclip (apt install xclip)");
        out.stdout
    }

    /// Copies `value` as another program would.
    fn copy(&self, value: &[u8]) {
        let mut child = Command::new("xclip")
            .args(["-selection", "clipboard", "-in"])
            .env("DISPLAY", &self.display)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xclip");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(value).unwrap();
        assert!(child.wait().unwrap().success());
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `avp --json get NAME -c --clear-after AFTER` in the X session; returns the JSON answer.
fn get_clip(agent: &TestAgent, x: &Xvfb, name: &str, after: &str) -> serde_json::Value {
    let out: Output = avp(agent)
        .env("DISPLAY", &x.display)
        .args(["--json", "get", name, "--clip", "--clear-after", after])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// True once `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_exit(pid: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !exited(pid) {
        assert!(Instant::now() < deadline, "the clearer {pid} never exited");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The clearer's command line, while it runs: the value must not be in it.
fn cmdline(pid: u64) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

#[test]
fn clip_copies_the_value_and_clears_it_after_the_delay() {
    let agent = TestAgent::start_initialized();
    let x = Xvfb::start();
    set(&agent, "FIRST", b"first-clip-value");
    set(&agent, "SECOND", b"second-clip-value");

    let answer = get_clip(&agent, &x, "FIRST", "0");
    assert_eq!(answer["copied"], true);
    assert_eq!(answer["tool"], "xclip");
    assert!(answer["clearer_pid"].is_null(), "{answer}");
    assert_eq!(x.clipboard(), b"first-clip-value");

    // A different value, so a copy that silently failed would leave FIRST's behind, which
    // the clearer (comparing with SECOND) would not clear.
    let answer = get_clip(&agent, &x, "SECOND", "2s");
    assert_eq!(answer["clear_after_seconds"], 2);
    let pid = answer["clearer_pid"].as_u64().expect("a clearer pid");
    assert!(
        !text(&cmdline(pid)).contains("second-clip-value"),
        "the value is in the clearer's argv"
    );
    wait_exit(pid);
    assert_eq!(text(&x.clipboard()), "", "the clipboard was not cleared");
}

#[test]
fn clip_leaves_what_the_user_copied_meanwhile() {
    let agent = TestAgent::start_initialized();
    let x = Xvfb::start();
    set(&agent, "TOKEN", b"token-clip-value");
    let answer = get_clip(&agent, &x, "TOKEN", "4s");
    let pid = answer["clearer_pid"].as_u64().expect("a clearer pid");
    x.copy(b"something the user copied");
    wait_exit(pid);
    assert_eq!(text(&x.clipboard()), "something the user copied");
}

#[test]
fn clip_without_a_clipboard_says_what_is_missing_and_prints_nothing() {
    let agent = TestAgent::start_initialized();
    set(&agent, "K", b"never-printed");
    // avp's environment is cleared: no DISPLAY, no WAYLAND_DISPLAY.
    let out = avp(&agent).args(["get", "K", "-c"]).output().unwrap();
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no clipboard") && stderr.contains("(INVALID_REQUEST)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty() && !stderr.contains("never-printed"));
}
