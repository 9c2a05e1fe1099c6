//! The one harness the end-to-end tests share: it runs the real `avp-agent` binary on a
//! temporary socket, vault directory and audit log, and talks to it over the real socket.
//!
//! The binaries are found next to the test executable (`target/<profile>/`); `cargo test
//! --workspace` builds them first because the agent and CLI packages have integration
//! tests of their own. `AVP_AGENT_BIN` / `AVP_BIN` override the paths.

pub mod cli;
pub mod json;
pub mod logind;
pub mod pinentry;
pub mod raw;
pub mod redis;
pub mod rng;
pub mod sentinel;
pub mod sys;
pub mod terminal;
pub mod wire;

use avp_protocol::frame;
use avp_protocol::{Passphrase, Request, Response, SessionId, WorkspaceId};
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The passphrase every test vault uses.
pub const TEST_PASSPHRASE: &str = "correct horse battery staple";
/// scrypt work factor for test vaults: fast, but real.
pub const TEST_WORK_FACTOR: u8 = 10;

/// The program `name` built beside the test executable (see the module docs).
pub fn target_dir_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // A test binary lives in target/<profile>/deps/, a program (avp-bench) in
    // target/<profile>/: look beside the executable, then one level up.
    let beside = exe.parent().expect("the executable has a directory");
    let candidates = [Some(beside), beside.parent()];
    candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| beside.join(name))
}

/// Path of the `avp-agent` binary under test.
pub fn agent_bin() -> PathBuf {
    std::env::var_os("AVP_AGENT_BIN").map_or_else(|| target_dir_binary("avp-agent"), PathBuf::from)
}

/// Path of the `avp` CLI binary under test.
pub fn avp_bin() -> PathBuf {
    std::env::var_os("AVP_BIN").map_or_else(|| target_dir_binary("avp"), PathBuf::from)
}

/// The name libtest gives the test `name` defined in the module whose `module_path!()` is
/// `module_path`: that path without the test crate's own name. A test that runs its own binary
/// again filtered to one helper test (`--exact`) needs it, because the grouped test binaries
/// (`tests/tests/<group>/main.rs`) hold each test file as a module.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// A running `avp-agent` on temporary paths. Killed on drop.
#[derive(Debug)]
pub struct TestAgent {
    /// Holds every file of this agent; removed on drop.
    pub dir: TempDir,
    /// The agent's socket.
    pub socket: PathBuf,
    /// The vault directory.
    pub vault: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
    /// Where the agent's stderr (its log) goes.
    pub log_file: PathBuf,
    child: Option<Child>,
}

/// Options for [`TestAgent::start_with`].
#[derive(Debug, Default, Clone)]
pub struct AgentOptions {
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Reuse this directory (socket, vault, audit log inside it) instead of a new one.
    pub reuse_dir: Option<PathBuf>,
    /// A command that runs the agent (e.g. `setpriv …` or `prlimit …`), if any; the agent
    /// then is its last argument, followed by the agent's own arguments.
    pub wrapper: Vec<String>,
}

impl TestAgent {
    /// Starts an agent with default options (no vault yet).
    pub fn start() -> Self {
        Self::start_with(AgentOptions::default())
    }

    /// Starts an agent and creates an unlocked vault in it.
    pub fn start_initialized() -> Self {
        let agent = Self::start();
        agent.init();
        agent
    }

    /// Starts an agent with `options` and waits until its socket answers.
    pub fn start_with(options: AgentOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("avp-test-")
            .tempdir()
            .expect("temp dir");
        let base = options
            .reuse_dir
            .clone()
            .unwrap_or_else(|| dir.path().to_path_buf());
        let socket = base.join("run/agent.sock");
        let vault = base.join("vault");
        let audit_log = base.join("audit.jsonl");
        let log_file = dir.path().join("agent.log");
        let mut agent = Self {
            dir,
            socket,
            vault,
            audit_log,
            log_file,
            child: None,
        };
        agent.spawn(&options);
        agent
    }

    fn spawn(&mut self, options: &AgentOptions) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("log file");
        let mut command = match options.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(agent_bin());
                command
            }
            None => Command::new(agent_bin()),
        };
        command
            .arg("--socket")
            .arg(&self.socket)
            .arg("--vault")
            .arg(&self.vault)
            .arg("--audit-log")
            .arg(&self.audit_log)
            .args(&options.args)
            .env_remove("AVP_SOCK")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env(
                "AVP_LOG",
                std::env::var("AVP_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn avp-agent");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "avp-agent exited with {status} before listening:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "avp-agent did not start:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the agent with SIGKILL (if running) and starts it again on the same paths.
    pub fn restart(&mut self, options: AgentOptions) {
        self.kill();
        self.spawn(&options);
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// Sends `signal` to the agent.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("kill");
    }

    /// Waits (bounded) for the agent to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the agent at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the agent has logged so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// A connection that has completed the `Hello` exchange.
    pub fn connect(&self) -> Conn {
        let mut conn = Conn::raw(&self.socket);
        conn.hello();
        conn
    }

    /// A connection speaking the JSON-lines wire (PROTOCOL.md §12), without `HELLO` (it is
    /// optional there): the same `call`s, each request written as a JSON line.
    pub fn connect_json(&self) -> Conn {
        let mut conn = Conn::raw(&self.socket);
        conn.codec = json::Codec::Json;
        conn
    }

    /// Creates the vault (unlocked) with [`TEST_PASSPHRASE`].
    pub fn init(&self) {
        let response = self.connect().call(&Request::Init {
            passphrase: Passphrase::new(TEST_PASSPHRASE),
            work_factor: Some(TEST_WORK_FACTOR),
        });
        assert!(
            matches!(response, Response::Initialized),
            "init: {response:?}"
        );
    }

    /// Unlocks the vault with [`TEST_PASSPHRASE`].
    pub fn unlock(&self) -> Response {
        self.connect().call(&Request::Unlock {
            passphrase: Passphrase::new(TEST_PASSPHRASE),
        })
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking connection speaking raw protocol frames.
#[derive(Debug)]
pub struct Conn {
    /// The socket, for tests that write raw bytes.
    pub stream: UnixStream,
    /// The wire `call` speaks.
    pub codec: json::Codec,
}

impl Conn {
    /// Connects without sending anything.
    pub fn raw(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect to agent");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Self {
            stream,
            codec: json::Codec::Bincode,
        }
    }

    /// Performs the `Hello` exchange with the current protocol version.
    pub fn hello(&mut self) {
        let response = self.call(&Request::Hello {
            version: avp_protocol::PROTOCOL_VERSION,
        });
        assert!(
            matches!(response, Response::Hello { .. }),
            "hello: {response:?}"
        );
    }

    /// Sends one request and reads its response.
    pub fn call(&mut self, request: &Request) -> Response {
        self.try_call(request).expect("agent answered")
    }

    /// Sends one request and reads its response; `None` if the agent closed the connection.
    pub fn try_call(&mut self, request: &Request) -> Option<Response> {
        if self.codec == json::Codec::Json {
            return self.json_call(request);
        }
        frame::write_message(&mut self.stream, request).ok()?;
        frame::read_message(&mut self.stream).ok().flatten()
    }

    /// Opens a session on `workspace` and returns its id.
    pub fn session(&mut self, workspace: &str) -> SessionId {
        let response = self.call(&Request::Authenticate {
            workspace: WorkspaceId::new(workspace).expect("valid workspace"),
            agent_id: "avp-tests".into(),
            ttl_seconds: None,
            wait_for_unlock: false,
        });
        match response {
            Response::Authenticated(info) => info.session,
            other => panic!("authenticate: {other:?}"),
        }
    }
}

/// The error code of an error response, or a panic naming what came instead.
pub fn error_code(response: &Response) -> avp_protocol::ErrorCode {
    match response {
        Response::Error(error) => error.code,
        other => panic!("expected an error, got {other:?}"),
    }
}
