//! A Sentinel-managed Redis on loopback, owned by one test: `redis-server`s (a primary and
//! one replica, or more; all persisting with `appendfsync always`, from [`RedisServer`]) and three
//! `redis-server --sentinel` processes watching them as service [`SERVICE`], with small
//! timeouts (`down-after-milliseconds` 1000, `failover-timeout` 3000) so a failover takes
//! a few seconds. Everything is killed on drop.

use crate::redis::{RedisServer, free_port};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The service name the sentinels monitor.
pub const SERVICE: &str = "avp";

/// One `redis-server --sentinel`.
#[derive(Debug)]
struct Sentinel {
    port: u16,
    child: Child,
}

/// Two data nodes and three sentinels.
#[derive(Debug)]
pub struct SentinelSet {
    /// The data nodes; which is primary changes with failovers (see [`Self::primary`]).
    nodes: Vec<Mutex<RedisServer>>,
    sentinels: Vec<Sentinel>,
    dir: TempDir,
}

/// `redis-cli -h 127.0.0.1 -p PORT --raw ARGS`; stdout, or `None` if it failed.
pub fn cli_port(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl SentinelSet {
    /// Starts the primary, a replica of it, and three sentinels, and waits until every
    /// sentinel knows the replica and the other sentinels (else a failover could not
    /// happen).
    pub fn start() -> Self {
        Self::start_with_replicas(1)
    }

    /// [`Self::start`] with `replicas` replicas.
    pub fn start_with_replicas(replicas: usize) -> Self {
        Self::start_custom(replicas, &[], "")
    }

    /// [`Self::start_with_replicas`], with `node_args` added to every data node's
    /// command line and `sentinel_conf` to every sentinel's configuration (ACL users…).
    pub fn start_custom(replicas: usize, node_args: &[&str], sentinel_conf: &str) -> Self {
        // A replica that (re)connects gets its full copy at once, not after the default
        // five seconds of waiting for more replicas to share a diskless transfer.
        let no_delay = || {
            let mut args = vec!["--repl-diskless-sync-delay".to_owned(), "0".to_owned()];
            args.extend(node_args.iter().map(|a| (*a).to_owned()));
            args
        };
        let primary = RedisServer::start_with(free_port(), no_delay());
        let primary_port = primary.port().expect("tcp");
        let mut nodes = vec![Mutex::new(primary)];
        for _ in 0..replicas {
            let mut replica_args = no_delay();
            replica_args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary_port.to_string(),
            ]);
            nodes.push(Mutex::new(RedisServer::start_with(
                free_port(),
                replica_args,
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("avp-sentinel-")
            .tempdir()
            .expect("temp dir");
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let config = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n\
                     dir {dir}\nlogfile {dir}/sentinel-{i}.log\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 3000\n\
                     sentinel parallel-syncs {SERVICE} 1\n{sentinel_conf}\n",
                    dir = dir.path().display()
                ),
            )
            .expect("write sentinel config");
            let child = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server --sentinel");
            sentinels.push(Sentinel { port, child });
        }
        let set = Self {
            nodes,
            sentinels,
            dir,
        };
        for sentinel in &set.sentinels {
            wait_until(Duration::from_secs(30), "sentinels see each other", || {
                let replicas = cli_port(sentinel.port, &["SENTINEL", "replicas", SERVICE]);
                let others = cli_port(sentinel.port, &["SENTINEL", "sentinels", SERVICE]);
                matches!((replicas, others), (Some(r), Some(o))
                    if r.contains("slave") && o.lines().filter(|l| *l == "name").count() >= 2)
            });
        }
        set.wait_replicated_by(replicas);
        set
    }

    /// The agent's `--redis-url`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}", hosts.join(","))
    }

    /// The port the sentinels name as primary (the first sentinel that answers).
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = cli_port(s.port, &["SENTINEL", "get-master-addr-by-name", SERVICE])?;
            out.lines().nth(1)?.trim().parse().ok()
        })
    }

    fn node(&self, i: usize) -> std::sync::MutexGuard<'_, RedisServer> {
        self.nodes[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The TCP port of data node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.node(i).port().expect("tcp")
    }

    /// The index of the current primary among the data nodes.
    pub fn primary(&self) -> usize {
        let port = self.primary_port().expect("a sentinel answers");
        (0..self.nodes.len())
            .find(|&i| self.port(i) == port)
            .expect("the primary is one of ours")
    }

    /// SIGKILLs data node `i`.
    pub fn kill(&self, i: usize) {
        self.node(i).kill();
    }

    /// Starts data node `i` again on its port and data as a replica of the current
    /// primary — as an operator or supervisor would bring back a failed primary. (Started
    /// as it was, a primary, the sentinels would demote it too, but only after about ten
    /// seconds of watching it.)
    pub fn restart_as_replica(&self, i: usize) {
        let primary = self.primary_port().expect("a sentinel answers");
        self.node(i).restart_as_replica_of(primary);
    }

    /// Waits until every sentinel names a primary other than `old_port` and that server
    /// says it is one.
    pub fn wait_promoted(&self, old_port: u16, within: Duration) {
        wait_until(within, "the sentinels promote the replica", || {
            self.sentinels.iter().all(|s| {
                cli_port(s.port, &["SENTINEL", "get-master-addr-by-name", SERVICE])
                    .and_then(|o| o.lines().nth(1)?.trim().parse::<u16>().ok())
                    .is_some_and(|p| {
                        p != old_port
                            && cli_port(p, &["ROLE"]).is_some_and(|r| r.starts_with("master"))
                    })
            })
        });
    }

    /// Waits until the primary has a replica online and in sync.
    pub fn wait_replicated(&self) {
        self.wait_replicated_by(1);
    }

    /// Waits until the primary has at least `replicas` replicas online.
    pub fn wait_replicated_by(&self, replicas: usize) {
        wait_until(Duration::from_secs(30), "replicas in sync", || {
            let Some(port) = self.primary_port() else {
                return false;
            };
            cli_port(port, &["INFO", "replication"])
                .is_some_and(|info| info.matches("state=online").count() >= replicas)
        });
    }

    /// Asks a sentinel for a planned failover (`SENTINEL FAILOVER`).
    pub fn planned_failover(&self) {
        let out = cli_port(self.sentinels[0].port, &["SENTINEL", "FAILOVER", SERVICE]);
        assert_eq!(
            out.as_deref().map(str::trim),
            Some("OK"),
            "SENTINEL FAILOVER"
        );
    }

    /// The sentinels' logs, for a failure message.
    pub fn logs(&self) -> String {
        (0..self.sentinels.len())
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("sentinel-{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for sentinel in &mut self.sentinels {
            let _ = sentinel.child.kill();
            let _ = sentinel.child.wait();
        }
    }
}
