//! A private `redis-server` per test: its own temp directory, a unix socket inside it
//! (and, when asked, a TCP port on 127.0.0.1), persistence on (`appendonly yes`,
//! `appendfsync always`: every acknowledged write is in the AOF before Redis replies), and
//! killed on drop. Needs `redis-server` and `redis-cli` on PATH (`.ci/run` installs them);
//! without them the test fails and says so — it never passes by skipping.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A running `redis-server` owned by one test.
#[derive(Debug)]
pub struct RedisServer {
    dir: TempDir,
    socket: PathBuf,
    port: Option<u16>,
    extra: Vec<String>,
    child: Option<Child>,
}

/// A TCP port of 127.0.0.1 that is free right now.
pub fn free_port() -> u16 {
    // The port is free when we look; redis-server binds it a moment later. `start` retries
    // on the rare race.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// A server on a unix socket only.
    pub fn start() -> Self {
        Self::launch(None, Vec::new())
    }

    /// A server on a free TCP port of 127.0.0.1 (and the unix socket, for `redis-cli`).
    pub fn start_tcp() -> Self {
        // Another process may take the port between `free_port` and redis-server's bind.
        for _ in 0..4 {
            if let Ok(server) = Self::try_launch(Some(free_port()), Vec::new()) {
                return server;
            }
        }
        Self::launch(Some(free_port()), Vec::new())
    }

    /// A server with extra `redis-server` arguments (e.g. TLS settings), TCP port `port`
    /// (0: none).
    pub fn start_with(port: u16, extra: Vec<String>) -> Self {
        Self::launch((port != 0).then_some(port), extra)
    }

    fn launch(port: Option<u16>, extra: Vec<String>) -> Self {
        Self::try_launch(port, extra).unwrap_or_else(|err| panic!("{err}"))
    }

    fn try_launch(port: Option<u16>, extra: Vec<String>) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("avp-redis-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("redis.sock");
        let mut server = Self {
            dir,
            socket,
            port,
            extra,
            child: None,
        };
        server.try_spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) {
        self.try_spawn().unwrap_or_else(|err| panic!("{err}"));
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.unwrap_or(0).to_string())
            .args(["--bind", "127.0.0.1"])
            .arg("--unixsocket")
            .arg(&self.socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().map_err(|err| {
            format!(
                "cannot start redis-server ({err}): install it (`apt-get install \
                 redis-server`; .ci/run does this)"
            )
        })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.ping() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "redis-server exited with {status}:\n{}",
                    self.log()
                ));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("redis-server did not start:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True when the server answers PING on its unix socket (a password-protected one
    /// answers NOAUTH, which is an answer too).
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// The URL an agent uses: TCP when the server has a port, else the unix socket.
    pub fn url(&self) -> String {
        match self.port {
            Some(port) => format!("redis://127.0.0.1:{port}"),
            None => self.unix_url(),
        }
    }

    /// The unix-socket URL.
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The TCP port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The data directory (the AOF lives under it).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server at once (SIGKILL: no shutdown save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same socket, port and data (it replays its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the server again on the same socket, port and data, as a replica of the
    /// server on 127.0.0.1:`port` (in place of any `--replicaof` it was started with).
    pub fn restart_as_replica_of(&mut self, port: u16) {
        self.kill();
        if let Some(at) = self.extra.iter().position(|a| a == "--replicaof") {
            self.extra.drain(at..at + 3);
        }
        self.extra
            .extend(["--replicaof".into(), "127.0.0.1".into(), port.to_string()]);
        self.spawn();
    }

    /// Runs `redis-cli ARGS` against the server (raw output) and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let output = self.cli_output(args);
        assert!(
            output.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    fn cli_output(&self, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .arg("--raw")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli (install redis-tools)")
    }

    /// Every key (`redis-cli --scan`).
    pub fn keys(&self) -> Vec<String> {
        let out = self.cli(&["--scan"]);
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Everything Redis holds, as bytes: for each key its name, its type, its contents
    /// (GET / HGETALL / SMEMBERS / ZRANGE / LRANGE) and its DUMP serialisation, followed
    /// by the AOF files on disk.
    pub fn dump(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for key in self.keys() {
            all.extend_from_slice(key.as_bytes());
            all.push(b'\n');
            let kind = String::from_utf8_lossy(&self.cli(&["TYPE", &key]))
                .trim()
                .to_owned();
            let contents = match kind.as_str() {
                "string" => self.cli(&["GET", &key]),
                "hash" => self.cli(&["HGETALL", &key]),
                "set" => self.cli(&["SMEMBERS", &key]),
                "zset" => self.cli(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
                "list" => self.cli(&["LRANGE", &key, "0", "-1"]),
                other => panic!("unexpected Redis type {other} for a key"),
            };
            all.extend_from_slice(&contents);
            all.extend_from_slice(&self.cli(&["DUMP", &key]));
        }
        for file in walk(self.dir.path()) {
            if file.extension().is_none_or(|e| e != "sock") {
                all.extend_from_slice(&std::fs::read(&file).unwrap_or_default());
            }
        }
        all
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files.extend(walk(&path)),
            Ok(t) if t.is_file() => files.push(path),
            _ => {}
        }
    }
    files
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The command-line arguments that put an agent on `url`.
pub fn agent_args(url: &str) -> Vec<String> {
    vec![
        "--backend".into(),
        "redis".into(),
        "--redis-url".into(),
        url.into(),
    ]
}

/// True if `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
