//! The link to Redis: a small pool of blocking connections that reconnects on demand, and
//! the one place that turns redis-rs errors into [`BackendError`]s.
//!
//! Why a pool and not one connection: backend calls run on the connection threads,
//! several at once, and a Redis connection serves one request at a time. Idle connections
//! are kept (at most [`MAX_IDLE`]); a connection that failed is dropped, never reused.
//!
//! Why a retry: after Redis restarts, every pooled connection is dead, and the first command
//! on one fails without having reached the new server. An operation whose *pooled*
//! connection breaks is retried once on a fresh connection. Every write script is safe to
//! run twice (see `scripts`), so a command that did land before the link broke is not
//! applied twice; the closure learns it is a retry so it can tell "already done" apart.
//! When no connection can be made, the error is `BACKEND_UNAVAILABLE` at once, and the next
//! operation tries again — the agent never holds on to a dead link.

use crate::storage::BackendError;
use crate::sync::guard;
use ::redis::{Client, Connection, ConnectionAddr, ErrorKind, RedisError, RedisResult};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a connection attempt may take (TCP connect, TLS handshake, AUTH).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command may wait for its reply. A Lua script here touches a handful of
/// keys; a LIST snapshot of 10,000 secrets is a few MiB.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
pub const MAX_IDLE: usize = 8;

/// A Redis server, reached through a pool of connections.
pub struct Redis {
    client: Client,
    /// The URL without credentials, for messages and STATUS.
    location: String,
    idle: Mutex<Vec<Connection>>,
    /// What the last operation learned: DISCOVER reports it without doing I/O.
    reachable: AtomicBool,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not `client`: its connection info holds the password.
        f.debug_struct("Redis")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Parses `url` (`redis://`, `rediss://`, `unix://`). Connects lazily: an agent starts
    /// even while Redis is down.
    pub fn open(url: &str) -> Result<Self, BackendError> {
        let client = Client::open(url).map_err(|_| {
            // redis-rs's message may quote the URL, and the URL may hold a password.
            BackendError::InvalidRequest(
                "--redis-url must look like redis://[:PASSWORD@]HOST[:PORT][/DB], \
                 rediss://… (TLS) or unix:///PATH/redis.sock[?db=N]",
            )
        })?;
        let location = location(client.get_connection_info());
        Ok(Self {
            client,
            location,
            idle: Mutex::new(Vec::new()),
            reachable: AtomicBool::new(true),
        })
    }

    /// The URL without user name or password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether the last operation reached Redis (no I/O).
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The error for "no connection could be made".
    pub fn unavailable(&self) -> BackendError {
        BackendError::Unavailable(format!(
            "cannot reach Redis at {} — is it running?",
            self.location
        ))
    }

    fn connect(&self) -> Result<Connection, BackendError> {
        let made = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|conn| {
                conn.set_read_timeout(Some(IO_TIMEOUT))?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(conn)
            });
        made.map_err(|err| {
            // redis-rs's connection errors are OS and TLS errors, never the URL.
            tracing::debug!(%err, redis = %self.location, "cannot connect to Redis");
            self.reachable.store(false, Ordering::Relaxed);
            match err.kind() {
                ErrorKind::AuthenticationFailed => BackendError::Unavailable(format!(
                    "Redis at {} refused the credentials: put the right user and password \
                     in --redis-url",
                    self.location
                )),
                _ => match server_code(&err) {
                    Some(code) if code == "NOAUTH" || code == "WRONGPASS" => {
                        BackendError::Unavailable(format!(
                            "Redis at {} refused the credentials ({code}): put the right \
                             user and password in --redis-url",
                            self.location
                        ))
                    }
                    _ => match tls_problem(&err) {
                        Some(TlsProblem::Untrusted(why)) => BackendError::Unavailable(format!(
                            "Redis at {} presented a TLS certificate this machine does not \
                             trust ({why}): add its CA to the system store or point \
                             SSL_CERT_FILE at it",
                            self.location
                        )),
                        Some(TlsProblem::NoRoots) => BackendError::Unavailable(format!(
                            "cannot load the trusted TLS certificates to check Redis at {} \
                             (system store, or SSL_CERT_FILE / SSL_CERT_DIR)",
                            self.location
                        )),
                        None => self.unavailable(),
                    },
                },
            }
        })
    }

    /// Runs `op` on a connection. `op` gets `true` when it is the retry of an attempt whose
    /// pooled connection broke (the first attempt may or may not have reached Redis).
    pub fn run<T>(
        &self,
        mut op: impl FnMut(&mut Connection, bool) -> RedisResult<T>,
    ) -> Result<T, BackendError> {
        let pooled = guard(&self.idle).pop();
        let (mut conn, mut from_pool) = match pooled {
            Some(conn) => (conn, true),
            None => (self.connect()?, false),
        };
        let mut retry = false;
        loop {
            match op(&mut conn, retry) {
                Ok(value) => {
                    self.reachable.store(true, Ordering::Relaxed);
                    self.check_in(conn);
                    return Ok(value);
                }
                Err(err) if is_link_failure(&err) => {
                    // The other idle connections went to the same server: if it restarted
                    // they are dead too, and each would cost a failed attempt.
                    guard(&self.idle).clear();
                    if from_pool && !err.is_timeout() {
                        conn = self.connect()?;
                        from_pool = false;
                        retry = true;
                        continue;
                    }
                    self.reachable.store(false, Ordering::Relaxed);
                    if err.is_timeout() {
                        return Err(BackendError::Unavailable(format!(
                            "Redis at {} did not answer within {} s",
                            self.location,
                            IO_TIMEOUT.as_secs()
                        )));
                    }
                    return Err(self.unavailable());
                }
                Err(err) => {
                    self.reachable.store(true, Ordering::Relaxed);
                    self.check_in(conn);
                    return Err(self.server_error(&err));
                }
            }
        }
    }

    fn check_in(&self, conn: Connection) {
        let mut idle = guard(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// A refusal from a server that is up. Only the server's error *code* (one upper-case
    /// word) is kept: its message could quote script text or arguments.
    fn server_error(&self, err: &RedisError) -> BackendError {
        let code = server_code(err).unwrap_or_else(|| "ERR".to_owned());
        let loc = &self.location;
        match code.as_str() {
            "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" => {
                BackendError::Unavailable(format!(
                    "Redis at {loc} is busy or still loading its data ({code}): try again shortly"
                ))
            }
            "NOAUTH" | "WRONGPASS" | "NOPERM" => BackendError::Unavailable(format!(
                "Redis at {loc} refused access ({code}): check the user and password in \
                 --redis-url and its ACL"
            )),
            "READONLY" => BackendError::Unavailable(format!(
                "Redis at {loc} is a read-only replica: point --redis-url at the primary"
            )),
            "OOM" => BackendError::io(
                "writing to Redis",
                std::io::Error::other(format!(
                    "Redis at {loc} is out of memory (maxmemory): nothing was written"
                )),
            ),
            _ => BackendError::io(
                "talking to Redis",
                std::io::Error::other(format!("Redis at {loc} refused a command ({code})")),
            ),
        }
    }
}

/// True when the connection itself failed (refused, reset, closed, timed out), as opposed
/// to the server answering with an error.
fn is_link_failure(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_unrecoverable_error()
}

/// Why a TLS connection failed, when it was TLS's doing.
enum TlsProblem {
    /// The server's certificate did not verify; rustls's reason (`UnknownIssuer`,
    /// `NotValidForName`…, from its fixed vocabulary).
    Untrusted(String),
    /// The trusted roots could not be loaded.
    NoRoots,
}

fn tls_problem(err: &RedisError) -> Option<TlsProblem> {
    let text = err.to_string();
    if text.contains("failed to read PEM") {
        return Some(TlsProblem::NoRoots);
    }
    let reason = text.split("invalid peer certificate: ").nth(1)?;
    let word: String = reason
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .take(40)
        .collect();
    Some(TlsProblem::Untrusted(if word.is_empty() {
        "invalid certificate".to_owned()
    } else {
        word
    }))
}

/// The server's error code, if it is one plain upper-case word.
fn server_code(err: &RedisError) -> Option<String> {
    let code = err.code()?;
    let plain = !code.is_empty()
        && code.len() <= 24
        && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    plain.then(|| code.to_owned())
}

/// `redis://host:port/db`, `rediss://host:port/db` or `unix:///path?db=N`: the address
/// and database, never the user name or password.
pub fn location(info: &::redis::ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    let host_port = |host: &str, port: u16| {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };
    let db_path = if db == 0 {
        String::new()
    } else {
        format!("/{db}")
    };
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{}{db_path}", host_port(host, *port)),
        ConnectionAddr::TcpTls { host, port, .. } => {
            format!("rediss://{}{db_path}", host_port(host, *port))
        }
        ConnectionAddr::Unix(path) => {
            let query = if db == 0 {
                String::new()
            } else {
                format!("?db={db}")
            };
            format!("unix://{}{query}", path.display())
        }
        _ => "redis (unknown address kind)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(url: &str) -> String {
        Redis::open(url).expect("valid url").location().to_owned()
    }

    #[test]
    fn locations_never_show_credentials() {
        assert_eq!(
            loc("redis://user:s3cr3t-pw@cache.example:6380/2"),
            "redis://cache.example:6380/2"
        );
        assert_eq!(loc("redis://:s3cr3t-pw@10.0.0.1"), "redis://10.0.0.1:6379");
        assert_eq!(
            loc("rediss://default:s3cr3t-pw@cache.example"),
            "rediss://cache.example:6379"
        );
        assert_eq!(
            loc("unix:///run/redis/redis.sock?db=3&pass=s3cr3t-pw"),
            "unix:///run/redis/redis.sock?db=3"
        );
        assert_eq!(loc("redis://[::1]:7000"), "redis://[::1]:7000");
        let debug = format!("{:?}", Redis::open("redis://u:s3cr3t-pw@h").unwrap());
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        for bad in [
            "http://u:s3cr3t-pw@h",
            "redis://u:s3cr3t-pw@h/notadb",
            "s3cr3t-pw",
        ] {
            let err = Redis::open(bad).expect_err(bad).to_string();
            assert!(!err.contains("s3cr3t"), "{err}");
            assert!(err.contains("--redis-url"), "{err}");
        }
    }

    #[test]
    fn an_unreachable_server_is_backend_unavailable() {
        // A unix socket path that does not exist: refused at once, no network needed.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("unix://{}/none.sock", dir.path().display());
        let redis = Redis::open(&url).unwrap();
        let err = redis
            .run(|conn, _| ::redis::cmd("PING").query::<String>(conn))
            .expect_err("nothing listens there");
        assert_eq!(err.code(), avp_protocol::ErrorCode::BackendUnavailable);
        assert!(err.to_string().contains("is it running?"), "{err}");
        assert!(!redis.is_reachable());
    }
}
