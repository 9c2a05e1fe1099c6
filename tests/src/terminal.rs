//! `avp` on a pseudo-terminal made by util-linux `script` (package bsdutils, on every Debian
//! system), for the tests of what avp does only on a terminal: prompts and questions.
//! (`tests/cli/tty.rs` has its own copy of this, predating it.)

use crate::{TestAgent, avp_bin};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `avp ARGS` running on a pseudo-terminal, with what it printed so far.
#[derive(Debug)]
pub struct Terminal {
    child: Child,
    input: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    /// Runs `avp ARGS` (a shell command line) against `agent`, with `env` added to a clean
    /// environment.
    pub fn run(agent: &TestAgent, args: &str, env: &[(&str, &str)]) -> Self {
        let command_line = format!("{} {args}", avp_bin().display());
        let mut command = Command::new("script");
        command
            .args(["-q", "-e", "-c", &command_line, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AVP_SOCK", &agent.socket)
            .env("TERM", "dumb")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("run script(1)");
        let input = child.stdin.take().expect("stdin");
        let mut output = child.stdout.take().expect("stdout");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = output.read(&mut buf) {
                sink.lock().expect("screen").extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            input,
            screen,
            reader: Some(reader),
        }
    }

    /// Everything printed so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("screen")).into_owned()
    }

    /// Waits until `text` has been printed, then a moment more so the terminal is reading
    /// before anything is typed.
    pub fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.screen().contains(text) {
            assert!(
                Instant::now() < deadline,
                "never printed {text:?}: {:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .expect("type");
        self.input.flush().expect("type");
    }

    /// Presses Ctrl-D (end of input) at the prompt.
    pub fn end_of_input(&mut self) {
        self.input.write_all(b"\x04").expect("type");
        self.input.flush().expect("type");
    }

    /// Waits for the exit; returns its code and the whole screen.
    pub fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Everything printed has been read once the reader sees end of file.
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("screen reader");
                }
                return (status.code().unwrap_or(-1), self.screen());
            }
            assert!(
                Instant::now() < deadline,
                "avp did not exit: {:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
