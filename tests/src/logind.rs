//! A private system bus with a mock logind on it, for the agent's lock-on-sleep and
//! lock-on-screen-lock tests: a real `dbus-daemon` (system-bus rules, on a socket in a temp
//! directory) and `mock-logind` (src/bin/mock-logind.rs), which owns `org.freedesktop.login1`
//! and emits logind's signals on command. Needs `dbus-daemon` on PATH (`.ci/run` installs the
//! `dbus-daemon` package); without it the test fails and says so — it never passes by
//! skipping. Both are killed on drop.

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use tempfile::TempDir;

/// The bus configuration: a system bus (`<type>system</type>`) whose policy lets the test's
/// uid own logind's name, on a socket of our own.
const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"#;

/// A running `dbus-daemon` owned by one test.
#[derive(Debug)]
pub struct SystemBus {
    _dir: TempDir,
    /// What `DBUS_SYSTEM_BUS_ADDRESS` should say.
    pub address: String,
    child: Child,
}

impl SystemBus {
    /// Starts a bus and waits until it listens (it prints its address then).
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("avp-dbus-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            CONFIG.replace("SOCKET", socket.to_str().expect("a UTF-8 temp path")),
        )
        .expect("write the bus config");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its complaints (it cannot raise its descriptor limit unprivileged) go to a file
            // beside the socket, not into the test's output.
            .stderr(std::fs::File::create(dir.path().join("dbus-daemon.log")).expect("bus log"))
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run dbus-daemon ({err}): install it (Debian: apt install dbus-daemon)"
                )
            });
        let mut address = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut address)
            .expect("dbus-daemon prints its address");
        let address = address.trim().to_owned();
        assert!(!address.is_empty(), "dbus-daemon exited without listening");
        Self {
            _dir: dir,
            address,
            child,
        }
    }

    /// `(DBUS_SYSTEM_BUS_ADDRESS, address)`, for a child's environment.
    pub fn env(&self) -> (String, String) {
        ("DBUS_SYSTEM_BUS_ADDRESS".to_owned(), self.address.clone())
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of the `mock-logind` binary: cargo builds this package's binaries with its
/// integration tests, beside the agent's.
fn mock_logind_bin() -> PathBuf {
    crate::target_dir_binary("mock-logind")
}

/// A running `mock-logind` on a [`SystemBus`].
#[derive(Debug)]
pub struct MockLogind {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl MockLogind {
    /// Starts it with `args` (`--by-pid`, `--display c1`) and waits until it owns the name.
    pub fn start(bus: &SystemBus, args: &[&str]) -> Self {
        let mut child = Command::new(mock_logind_bin())
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run mock-logind");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut mock = Self {
            child,
            stdin,
            stdout,
        };
        mock.expect("ready");
        mock
    }

    /// Sends one command (`sleep true`, `lock c1`, `hint c1 true`, `spoof-sleep`) and waits
    /// until the bus has routed its signal.
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to mock-logind");
        self.stdin.flush().expect("flush mock-logind's stdin");
        self.expect("ok");
    }

    fn expect(&mut self, word: &str) {
        let line = self
            .stdout
            .next()
            .unwrap_or_else(|| panic!("mock-logind ended before saying {word}"))
            .expect("read mock-logind");
        assert_eq!(line, word, "mock-logind");
    }
}

impl Drop for MockLogind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
