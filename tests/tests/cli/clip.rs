//! `avp get NAME --clip`: the value reaches a real X clipboard (Xvfb, through xclip, or xsel
//! when xclip is not installed), never stdout or argv, and the detached clearer empties the
//! clipboard after the delay only if it still holds that value.

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

/// The clipboard tool avp is to find: on `PATH` as the tests run (xclip), or alone.
#[derive(Clone, Copy)]
enum Tool {
    Xclip,
    Xsel,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Xclip => "xclip",
            Self::Xsel => "xsel",
        }
    }
}

/// `avp --json get NAME -c --clear-after AFTER` in the X session, finding only `tool`;
/// returns the JSON answer.
fn get_clip(agent: &TestAgent, x: &Xvfb, tool: Tool, name: &str, after: &str) -> serde_json::Value {
    let mut command = avp(agent);
    command.env("DISPLAY", &x.display);
    if let Tool::Xsel = tool {
        // A PATH holding only xsel, so avp (and its clearer, which inherits it) cannot
        // prefer xclip.
        let bin = agent.dir.path().join("only-xsel");
        if !bin.exists() {
            std::fs::create_dir(&bin).unwrap();
            let xsel = which("xsel").expect("xsel (apt install xsel; .ci/run installs it)");
            std::os::unix::fs::symlink(xsel, bin.join("xsel")).unwrap();
        }
        // xsel refuses to run without a HOME (where it would keep its log); a session has one.
        command.env("PATH", &bin).env("HOME", agent.dir.path());
    }
    let out: Output = command
        .args(["--json", "get", name, "--clip", "--clear-after", after])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// `program` on the tests' `PATH`.
fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
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

fn copies_the_value_and_clears_it_after_the_delay(tool: Tool) {
    let agent = TestAgent::start_initialized();
    let x = Xvfb::start();
    set(&agent, "FIRST", b"first-clip-value");
    set(&agent, "SECOND", b"second-clip-value");

    let answer = get_clip(&agent, &x, tool, "FIRST", "0");
    assert_eq!(answer["copied"], true);
    assert_eq!(answer["tool"], tool.name());
    assert!(answer["clearer_pid"].is_null(), "{answer}");
    assert_eq!(x.clipboard(), b"first-clip-value");

    // A different value, so a copy that silently failed would leave FIRST's behind, which
    // the clearer (comparing with SECOND) would not clear.
    let answer = get_clip(&agent, &x, tool, "SECOND", "2s");
    assert_eq!(answer["tool"], tool.name());
    assert_eq!(answer["clear_after_seconds"], 2);
    let pid = answer["clearer_pid"].as_u64().expect("a clearer pid");
    assert!(
        !text(&cmdline(pid)).contains("second-clip-value"),
        "the value is in the clearer's argv"
    );
    assert_eq!(x.clipboard(), b"second-clip-value");
    wait_exit(pid);
    assert_eq!(text(&x.clipboard()), "", "the clipboard was not cleared");
}

fn leaves_what_the_user_copied_meanwhile(tool: Tool) {
    let agent = TestAgent::start_initialized();
    let x = Xvfb::start();
    set(&agent, "TOKEN", b"token-clip-value");
    let answer = get_clip(&agent, &x, tool, "TOKEN", "4s");
    assert_eq!(answer["tool"], tool.name());
    let pid = answer["clearer_pid"].as_u64().expect("a clearer pid");
    x.copy(b"something the user copied");
    wait_exit(pid);
    assert_eq!(text(&x.clipboard()), "something the user copied");
}

#[test]
fn clip_copies_the_value_and_clears_it_after_the_delay() {
    copies_the_value_and_clears_it_after_the_delay(Tool::Xclip);
}

#[test]
fn clip_leaves_what_the_user_copied_meanwhile() {
    leaves_what_the_user_copied_meanwhile(Tool::Xclip);
}

/// Issue 16: the xsel path (X11 without xclip) had no test.
#[test]
fn clip_with_xsel_copies_the_value_and_clears_it_after_the_delay() {
    copies_the_value_and_clears_it_after_the_delay(Tool::Xsel);
}

#[test]
fn clip_with_xsel_leaves_what_the_user_copied_meanwhile() {
    leaves_what_the_user_copied_meanwhile(Tool::Xsel);
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
