//! `avp get NAME --clip`: the value reaches a real clipboard — X (Xvfb, through xclip, or xsel
//! when xclip is not installed) or Wayland (a headless sway, through wl-copy) — never stdout
//! or argv, and the detached clearer empties the clipboard after the delay only if it still
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

/// A graphical session with a clipboard, read and written by its own tools.
trait Session {
    /// The environment that points a program at the session.
    fn env(&self) -> Vec<(&'static str, std::ffi::OsString)>;
    /// What the clipboard holds (empty when nothing owns it).
    fn clipboard(&self) -> Vec<u8>;
    /// Copies `value` as another program would.
    fn copy(&self, value: &[u8]);
}

/// Runs `command` with `value` on its standard input; it must succeed.
fn feed(mut command: Command, value: &[u8]) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a clipboard tool");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(value).unwrap();
    assert!(child.wait().unwrap().success());
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
}

impl Session for Xvfb {
    fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![("DISPLAY", self.display.clone().into())]
    }

    /// What xclip reads from the CLIPBOARD selection.
    fn clipboard(&self) -> Vec<u8> {
        let out = Command::new("xclip")
            .args(["-selection", "clipboard", "-out"])
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .output()
            .expect("xclip (apt install xclip)");
        out.stdout
    }

    fn copy(&self, value: &[u8]) {
        let mut xclip = Command::new("xclip");
        xclip
            .args(["-selection", "clipboard", "-in"])
            .env("DISPLAY", &self.display);
        feed(xclip, value);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Wayland compositor: sway on wlroots' headless backend, with no input device
/// and no Xwayland. sway refuses to run as root, so under root it runs as `nobody` (in a
/// runtime directory `nobody` owns, whose socket root can still connect to).
struct Sway {
    child: Child,
    runtime: tempfile::TempDir,
    display: String,
}

impl Sway {
    const NOBODY: u32 = 65_534;

    fn start() -> Self {
        let runtime = tempfile::tempdir().unwrap();
        let config = runtime.path().join("config");
        std::fs::write(&config, "xwayland disable\n").unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            let nobody = Some(nix::unistd::Uid::from_raw(Self::NOBODY));
            let nogroup = Some(nix::unistd::Gid::from_raw(Self::NOBODY));
            for path in [runtime.path(), config.as_path()] {
                nix::unistd::chown(path, nobody, nogroup).unwrap();
            }
        }
        let mut command = if root {
            let mut setpriv = Command::new("setpriv");
            let id = Self::NOBODY.to_string();
            setpriv.args([
                &format!("--reuid={id}"),
                &format!("--regid={id}"),
                "--clear-groups",
                "sway",
            ]);
            setpriv
        } else {
            Command::new("sway")
        };
        let child = command
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", runtime.path())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sway (apt install sway wl-clipboard; .ci/run installs them)");
        let mut sway = Self {
            child,
            runtime,
            display: String::new(),
        };
        // Its socket, wayland-N, is there once it listens.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let socket = std::fs::read_dir(sway.runtime.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .find(|name| {
                    name.strip_prefix("wayland-")
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                });
            if let Some(socket) = socket {
                sway.display = socket;
                return sway;
            }
            if let Some(status) = sway.child.try_wait().unwrap() {
                panic!("sway exited with {status} before listening");
            }
            assert!(Instant::now() < deadline, "sway did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tool(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.envs(self.env());
        command
    }
}

impl Session for Sway {
    fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("XDG_RUNTIME_DIR", self.runtime.path().into()),
            ("WAYLAND_DISPLAY", self.display.clone().into()),
        ]
    }

    /// What wl-paste reads (it fails, printing nothing, when nothing is copied).
    fn clipboard(&self) -> Vec<u8> {
        let out = self
            .tool("wl-paste")
            .arg("--no-newline")
            .stderr(Stdio::null())
            .output()
            .expect("wl-paste (apt install wl-clipboard)");
        out.stdout
    }

    fn copy(&self, value: &[u8]) {
        feed(self.tool("wl-copy"), value);
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        // Its clients (wl-copy's servers) end with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The clipboard tool avp is to find: on `PATH` as the tests run (xclip under X, wl-copy
/// under Wayland), or xsel alone.
#[derive(Clone, Copy)]
enum Tool {
    Xclip,
    Xsel,
    WlCopy,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Xclip => "xclip",
            Self::Xsel => "xsel",
            Self::WlCopy => "wl-copy",
        }
    }

    /// A session of the kind the tool serves.
    fn session(self) -> Box<dyn Session> {
        match self {
            Self::Xclip | Self::Xsel => Box::new(Xvfb::start()),
            Self::WlCopy => Box::new(Sway::start()),
        }
    }
}

/// `avp --json get NAME -c --clear-after AFTER` in the session, finding only `tool`;
/// returns the JSON answer.
fn get_clip(
    agent: &TestAgent,
    session: &dyn Session,
    tool: Tool,
    name: &str,
    after: &str,
) -> serde_json::Value {
    let mut command = avp(agent);
    command.envs(session.env());
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
    let x = tool.session();
    set(&agent, "FIRST", b"first-clip-value");
    set(&agent, "SECOND", b"second-clip-value");

    let answer = get_clip(&agent, &*x, tool, "FIRST", "0");
    assert_eq!(answer["copied"], true);
    assert_eq!(answer["tool"], tool.name());
    assert!(answer["clearer_pid"].is_null(), "{answer}");
    assert_eq!(x.clipboard(), b"first-clip-value");

    // A different value, so a copy that silently failed would leave FIRST's behind, which
    // the clearer (comparing with SECOND) would not clear.
    let answer = get_clip(&agent, &*x, tool, "SECOND", "2s");
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
    let x = tool.session();
    set(&agent, "TOKEN", b"token-clip-value");
    let answer = get_clip(&agent, &*x, tool, "TOKEN", "4s");
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

/// Issue 16: the Wayland path (wl-copy, wl-paste, wl-copy --clear) had no test.
#[test]
fn clip_with_wl_copy_copies_the_value_and_clears_it_after_the_delay() {
    copies_the_value_and_clears_it_after_the_delay(Tool::WlCopy);
}

#[test]
fn clip_with_wl_copy_leaves_what_the_user_copied_meanwhile() {
    leaves_what_the_user_copied_meanwhile(Tool::WlCopy);
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
