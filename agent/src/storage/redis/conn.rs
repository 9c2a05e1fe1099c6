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
//!
//! Sentinel mode (`redis+sentinel://`, see [`super::sentinel`]): the primary is whatever
//! the sentinels name (re-checked at most every [`PRIMARY_RECHECK`]). A broken link, or a
//! server answering that it is not a writable primary, makes the request ask again and
//! re-run on the new primary, polling for up to [`RedisOptions::failover_wait`] — a
//! failover costs a caller one slow answer. Writes then wait for
//! [`RedisOptions::min_replicas`] replicas (`WAIT`) before they are acknowledged, so the
//! replica the sentinels promote holds every acknowledged write.
//!
//! The pool also remembers when Redis was last reached and since when it has not been: the
//! backend answers reads from last-known state within [`RedisOptions::stale_reads`] of the
//! last contact, and DISCOVER says `degraded`.

use super::sentinel::{self, Sentinels};
use crate::storage::BackendError;
use crate::sync::guard;
use ::redis::{Client, Connection, ConnectionAddr, ErrorKind, RedisError, RedisResult};
use avp_protocol::Timestamp;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a connection attempt may take (TCP connect, TLS handshake, AUTH).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command may wait for its reply. A Lua script here touches a handful of
/// keys; a LIST snapshot of 10,000 secrets is a few MiB.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
pub const MAX_IDLE: usize = 8;
/// In Sentinel mode, how often the agent asks the sentinels whether the primary it uses is
/// still the primary (on the next request after this long). A planned failover or a
/// partition leaves the old primary running, and its connections open, for a while: this
/// bounds how long requests keep going to it.
pub const PRIMARY_RECHECK: Duration = Duration::from_secs(1);
/// In Sentinel mode, the pause between two attempts to find and reach the primary while a
/// failover is under way.
pub const FAILOVER_POLL: Duration = Duration::from_millis(100);

/// The high-availability settings of the Redis backend (`avp-agent --redis-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// Replicas that must confirm a write (`WAIT`) before it is acknowledged; `None`: 1 in
    /// Sentinel mode, 0 otherwise.
    pub min_replicas: Option<u32>,
    /// How long a write waits for those replicas.
    pub wait_timeout: Duration,
    /// In Sentinel mode, how long a request keeps looking for a (new) primary before it
    /// answers `BACKEND_UNAVAILABLE`: the failover bound a caller sees.
    pub failover_wait: Duration,
    /// How long after the last successful contact an unlocked agent keeps answering
    /// RETRIEVE, LIST and HISTORY from what it last read or wrote (zero: never).
    pub stale_reads: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            min_replicas: None,
            wait_timeout: Duration::from_secs(2),
            failover_wait: Duration::from_secs(15),
            stale_reads: Duration::from_secs(300),
        }
    }
}

/// What `--redis-url` names: one server, or a service found through sentinels.
enum Target {
    Direct(Client),
    Sentinel {
        sentinels: Sentinels,
        /// The primary the sentinels named last, until it fails or they name another.
        primary: Mutex<Option<Primary>>,
    },
}

/// The primary the sentinels named.
struct Primary {
    client: Client,
    /// `host:port`.
    addr: String,
    /// When the sentinels last named it.
    confirmed: Instant,
}

/// When Redis was last reached, and since when it has not been.
#[derive(Debug, Default)]
struct Contact {
    last_ok: Option<Instant>,
    down_since: Option<Timestamp>,
}

/// A Redis server, reached through a pool of connections.
pub struct Redis {
    target: Target,
    /// The URL without credentials, for messages and STATUS.
    location: String,
    /// Replicas a write waits for (resolved from [`RedisOptions::min_replicas`]).
    min_replicas: u32,
    options: RedisOptions,
    idle: Mutex<Vec<Connection>>,
    /// What the last operation learned: DISCOVER reports it without doing I/O.
    reachable: AtomicBool,
    contact: Mutex<Contact>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not `target`: its connection info holds the password.
        f.debug_struct("Redis")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Parses `url` (`redis://`, `rediss://`, `unix://`, `redis+sentinel://`,
    /// `rediss+sentinel://`), with the default options. Connects lazily: an agent starts
    /// even while Redis is down.
    pub fn open(url: &str) -> Result<Self, BackendError> {
        Self::open_with(url, RedisOptions::default())
    }

    /// [`Self::open`] with explicit high-availability options.
    pub fn open_with(url: &str, options: RedisOptions) -> Result<Self, BackendError> {
        let (target, location, default_replicas) = if sentinel::is_sentinel_url(url) {
            let sentinels = Sentinels::parse(url)?;
            let location = sentinels.location().to_owned();
            let target = Target::Sentinel {
                sentinels,
                primary: Mutex::new(None),
            };
            (target, location, 1)
        } else {
            let client = Client::open(url).map_err(|_| {
                // redis-rs's message may quote the URL, and the URL may hold a password.
                BackendError::InvalidRequest(
                    "--redis-url must look like redis://[:PASSWORD@]HOST[:PORT][/DB], \
                     rediss://… (TLS), unix:///PATH/redis.sock[?db=N] or \
                     redis+sentinel://HOST[:PORT],…/SERVICE[/DB]",
                )
            })?;
            let location = location(client.get_connection_info());
            (Target::Direct(client), location, 0)
        };
        Ok(Self {
            target,
            location,
            min_replicas: options.min_replicas.unwrap_or(default_replicas),
            options,
            idle: Mutex::new(Vec::new()),
            reachable: AtomicBool::new(true),
            contact: Mutex::new(Contact::default()),
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

    /// Whether reads may be answered from what this agent last read or wrote: Redis was
    /// reached successfully within [`RedisOptions::stale_reads`].
    pub fn stale_reads_allowed(&self) -> bool {
        let window = self.options.stale_reads;
        !window.is_zero()
            && guard(&self.contact)
                .last_ok
                .is_some_and(|at| at.elapsed() <= window)
    }

    /// Since when Redis has been unreachable while reads are still served from the last
    /// known state (no I/O); `None` when Redis is reachable or stale reads are off or over.
    pub fn degraded_since(&self) -> Option<Timestamp> {
        if self.is_reachable() || !self.stale_reads_allowed() {
            return None;
        }
        guard(&self.contact).down_since
    }

    /// The error for "no connection could be made".
    pub fn unavailable(&self) -> BackendError {
        BackendError::Unavailable(match &self.target {
            Target::Direct(_) => {
                format!("cannot reach Redis at {} — is it running?", self.location)
            }
            Target::Sentinel { .. } => format!(
                "cannot reach the Redis primary of {} within {} s — is a failover stuck, or \
                 are the sentinels and servers down?",
                self.location,
                self.options.failover_wait.as_secs()
            ),
        })
    }

    fn up(&self) {
        self.reachable.store(true, Ordering::Relaxed);
        let mut contact = guard(&self.contact);
        contact.last_ok = Some(Instant::now());
        contact.down_since = None;
    }

    fn down(&self, err: BackendError) -> BackendError {
        self.reachable.store(false, Ordering::Relaxed);
        let mut contact = guard(&self.contact);
        contact.down_since.get_or_insert_with(Timestamp::now);
        err
    }

    /// Forgets the primary the sentinels named, so the next connection asks them again.
    fn forget_primary(&self) {
        if let Target::Sentinel { primary, .. } = &self.target {
            guard(primary).take();
        }
    }

    /// In Sentinel mode, asks the sentinels whether the primary in use still is the
    /// primary — when `now`, or when it was last confirmed [`PRIMARY_RECHECK`] ago. If they
    /// name another, drops it and every pooled connection to it and answers true.
    fn primary_moved(&self, now: bool) -> bool {
        let Target::Sentinel { sentinels, primary } = &self.target else {
            return false;
        };
        let due = match guard(primary).as_mut() {
            Some(p) if now || p.confirmed.elapsed() >= PRIMARY_RECHECK => {
                // Claimed now, so the threads that come next do not all ask too.
                p.confirmed = Instant::now();
                true
            }
            _ => false,
        };
        if !due {
            return false;
        }
        // A sentinel that cannot be asked proves nothing: the link to the primary decides.
        let Ok((client, addr)) = sentinels.primary() else {
            return false;
        };
        let mut known = guard(primary);
        match known.as_mut() {
            Some(p) if p.addr == addr => {
                p.confirmed = Instant::now();
                false
            }
            _ => {
                tracing::info!(primary = %addr, "the sentinels named a new Redis primary");
                *known = Some(Primary {
                    client,
                    addr,
                    confirmed: Instant::now(),
                });
                drop(known);
                guard(&self.idle).clear();
                true
            }
        }
    }

    /// A new connection to the server (in Sentinel mode, the primary). On failure, also
    /// whether waiting may help: not when the server refused our credentials, ACL or TLS
    /// trust — a failover does not change those.
    fn connect(&self) -> Result<Connection, (BackendError, bool)> {
        let client = match &self.target {
            Target::Direct(client) => client.clone(),
            Target::Sentinel { sentinels, primary } => {
                let known = guard(primary).as_ref().map(|p| p.client.clone());
                match known {
                    Some(client) => client,
                    None => {
                        let (client, addr) = sentinels.primary().map_err(|err| (err, true))?;
                        tracing::debug!(primary = %addr, "the sentinels named the Redis primary");
                        *guard(primary) = Some(Primary {
                            client: client.clone(),
                            addr,
                            confirmed: Instant::now(),
                        });
                        client
                    }
                }
            }
        };
        let made = client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|conn| {
                conn.set_read_timeout(Some(IO_TIMEOUT))?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(conn)
            });
        let mut conn = made.map_err(|err| {
            self.forget_primary();
            (self.connect_error(&err), !is_refusal(&err))
        })?;
        if matches!(self.target, Target::Sentinel { .. }) {
            match sentinel::is_primary(&mut conn) {
                Ok(true) => {}
                Ok(false) => {
                    self.forget_primary();
                    return Err((
                        BackendError::Unavailable(format!(
                            "the server the sentinels of {} named is not a primary yet \
                             (a failover is under way): try again shortly",
                            self.location
                        )),
                        true,
                    ));
                }
                Err(err) if is_link_failure(&err) => {
                    self.forget_primary();
                    return Err((self.connect_error(&err), true));
                }
                Err(err) => {
                    // An answer, e.g. NOPERM: the ACL user lacks `ROLE`.
                    self.forget_primary();
                    return Err((self.server_error(&err), false));
                }
            }
        }
        Ok(conn)
    }

    fn connect_error(&self, err: &RedisError) -> BackendError {
        // redis-rs's connection errors are OS and TLS errors, never the URL.
        tracing::debug!(%err, redis = %self.location, "cannot connect to Redis");
        match err.kind() {
            ErrorKind::AuthenticationFailed => BackendError::Unavailable(format!(
                "Redis at {} refused the credentials: put the right user and password \
                 in --redis-url",
                self.location
            )),
            _ => match server_code(err) {
                Some(code) if code == "NOAUTH" || code == "WRONGPASS" => {
                    BackendError::Unavailable(format!(
                        "Redis at {} refused the credentials ({code}): put the right \
                         user and password in --redis-url",
                        self.location
                    ))
                }
                _ => match tls_problem(err) {
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
    }

    /// In Sentinel mode, while `deadline` is not reached: pauses [`FAILOVER_POLL`] and
    /// answers true (try again). Otherwise false at once.
    fn wait_for_failover(&self, deadline: Option<Instant>) -> bool {
        match deadline {
            Some(deadline) if Instant::now() + FAILOVER_POLL < deadline => {
                std::thread::sleep(FAILOVER_POLL);
                true
            }
            _ => false,
        }
    }

    /// Runs `op` on a connection. `op` gets `true` when it is the retry of an attempt whose
    /// connection broke (the first attempt may or may not have reached Redis).
    ///
    /// A broken pooled connection is retried once on a fresh one. In Sentinel mode a
    /// failure of the link, or an answer saying the server is no (longer a writable)
    /// primary (`READONLY`, `MASTERDOWN`, `LOADING`…), makes the request ask the sentinels
    /// again and re-run on the primary they name, for up to
    /// [`RedisOptions::failover_wait`]: a failover costs a caller one slow answer.
    pub fn run<T>(
        &self,
        mut op: impl FnMut(&mut Connection, bool) -> RedisResult<T>,
    ) -> Result<T, BackendError> {
        let sentinel = matches!(self.target, Target::Sentinel { .. });
        let deadline = sentinel.then(|| Instant::now() + self.options.failover_wait);
        self.primary_moved(false);
        let mut pooled = guard(&self.idle).pop();
        let mut retry = false;
        loop {
            let (mut conn, from_pool) = match pooled.take() {
                Some(conn) => (conn, true),
                None => match self.connect() {
                    Ok(conn) => (conn, false),
                    Err((err, may_pass)) => {
                        if may_pass && self.wait_for_failover(deadline) {
                            continue;
                        }
                        return Err(self.down(err));
                    }
                },
            };
            match op(&mut conn, retry) {
                Ok(value) => {
                    self.up();
                    self.check_in(conn);
                    return Ok(value);
                }
                Err(err) if is_link_failure(&err) => {
                    // The other idle connections went to the same server: if it restarted
                    // they are dead too, and each would cost a failed attempt.
                    guard(&self.idle).clear();
                    retry = true;
                    if from_pool && !err.is_timeout() {
                        continue;
                    }
                    self.forget_primary();
                    if self.wait_for_failover(deadline) {
                        continue;
                    }
                    if err.is_timeout() {
                        return Err(self.down(BackendError::Unavailable(format!(
                            "Redis at {} did not answer within {} s",
                            self.location,
                            IO_TIMEOUT.as_secs()
                        ))));
                    }
                    return Err(self.down(self.unavailable()));
                }
                Err(err) if sentinel && is_failover_answer(&err) => {
                    // Not run (a script stops at its first write on a replica, and every
                    // script writes its counter before any data): drop this server.
                    guard(&self.idle).clear();
                    self.forget_primary();
                    if self.wait_for_failover(deadline) {
                        continue;
                    }
                    return Err(self.down(self.server_error(&err)));
                }
                Err(err) => {
                    self.up();
                    self.check_in(conn);
                    return Err(self.server_error(&err));
                }
            }
        }
    }

    /// Runs the write `op` like [`Self::run`] and, when `applied` says it changed (or
    /// already had changed) Redis, waits with `WAIT` until the configured number of
    /// replicas hold it. Fewer within [`RedisOptions::wait_timeout`]: `BACKEND_UNAVAILABLE`,
    /// the write not acknowledged (it is on the primary, and may or may not survive a
    /// failover).
    pub fn write<T>(
        &self,
        mut op: impl FnMut(&mut Connection, bool) -> RedisResult<T>,
        applied: impl Fn(&T) -> bool,
    ) -> Result<T, BackendError> {
        let need = self.min_replicas;
        if need == 0 {
            return self.run(op);
        }
        // WAIT 0 would block for ever.
        let wait_ms = self
            .options
            .wait_timeout
            .as_millis()
            .clamp(1, u128::from(u32::MAX));
        let (value, acked) = self.run(|conn, retry| {
            let value = op(conn, retry)?;
            if !applied(&value) {
                return Ok((value, need));
            }
            let acked: u32 = ::redis::cmd("WAIT")
                .arg(need)
                .arg(wait_ms as u64)
                .query(conn)?;
            if acked < need && self.primary_moved(true) {
                // Written to a primary the sentinels have replaced, whose replica went
                // with the failover: it will be wiped when that server is made a replica.
                // Treated as a broken link, so it is re-run (safely: see `scripts`) on
                // the new primary.
                return Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the primary was replaced",
                )));
            }
            Ok((value, acked))
        })?;
        if acked < need {
            return Err(BackendError::Unavailable(format!(
                "the write reached the primary of {} but only {acked} of the {need} \
                 replica(s) --redis-min-replicas asks for confirmed it within {wait_ms} ms, \
                 so it was not acknowledged: it may or may not survive a failover (read it \
                 back to see); check that the replicas are up and replicating",
                self.location
            )));
        }
        Ok(value)
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

/// A connection refused for our credentials or the server's certificate (not for being
/// down or busy).
fn is_refusal(err: &RedisError) -> bool {
    err.kind() == ErrorKind::AuthenticationFailed
        || server_code(err).is_some_and(|c| matches!(c.as_str(), "NOAUTH" | "WRONGPASS" | "NOPERM"))
        || tls_problem(err).is_some()
}

/// An answer by which a server says it is not (yet) the writable primary.
fn is_failover_answer(err: &RedisError) -> bool {
    server_code(err).is_some_and(|code| {
        matches!(
            code.as_str(),
            "READONLY" | "MASTERDOWN" | "LOADING" | "TRYAGAIN" | "NOREPLICAS"
        )
    })
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
