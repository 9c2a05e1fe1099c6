//! Redis Sentinel: finding the current primary of a service from a list of sentinels.
//!
//! URL form (parsed here, never echoed — it may hold passwords):
//!
//! ```text
//! redis+sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB][?sentinel_user=U&sentinel_password=P]
//! rediss+sentinel://…   (TLS to the sentinels and to the primary)
//! ```
//!
//! The credentials before `@` are the primary's (the same ACL user as a plain `redis://`
//! URL); sentinels that require a password get theirs from the query. The sentinel port
//! defaults to 26379.
//!
//! Why not redis-rs's `sentinel` feature: its blocking `SentinelClient` connects to the
//! sentinels and the primary without a timeout and keeps one cached primary, whereas the
//! agent must bound every step (an unreachable sentinel costs [`SENTINEL_TIMEOUT`], not a
//! TCP timeout of minutes) and re-ask on every failure. The query it needs is one command,
//! `SENTINEL get-master-addr-by-name`, plus a `ROLE` check of the answer.

use crate::storage::BackendError;
use ::redis::{Client, Connection, RedisResult};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long asking one sentinel may take (connect and answer).
pub const SENTINEL_TIMEOUT: Duration = Duration::from_millis(1000);
/// The sentinel port when a host names none.
pub const DEFAULT_PORT: u16 = 26379;

/// What a Sentinel URL names.
pub struct Sentinels {
    /// One client per sentinel, in the URL's order.
    sentinels: Vec<Client>,
    /// The service (`sentinel monitor NAME …`).
    service: String,
    /// `redis` or `rediss`.
    node_scheme: &'static str,
    /// `USER:PASSWORD@` or empty, as written in the URL (still percent-encoded).
    node_userinfo: String,
    /// The database on the primary.
    db: i64,
    /// The sentinel addresses and service, for messages.
    location: String,
    /// The sentinel that answered last, asked first next time: one that is down or
    /// unreachable then costs nothing until the others fail too.
    preferred: AtomicUsize,
}

impl std::fmt::Debug for Sentinels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the clients or userinfo: they hold passwords.
        f.debug_struct("Sentinels")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn bad_url() -> BackendError {
    BackendError::InvalidRequest(
        "a Sentinel --redis-url must look like \
         redis+sentinel://[USER:PASSWORD@]HOST[:PORT],HOST[:PORT],…/SERVICE[/DB]\
         [?sentinel_user=U&sentinel_password=P] (rediss+sentinel:// for TLS)",
    )
}

/// Whether `url` is a Sentinel URL.
pub fn is_sentinel_url(url: &str) -> bool {
    url.starts_with("redis+sentinel://") || url.starts_with("rediss+sentinel://")
}

impl Sentinels {
    /// Parses a Sentinel URL (see the module docs). Connects to nothing.
    pub fn parse(url: &str) -> Result<Self, BackendError> {
        let (node_scheme, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            ("redis", rest)
        } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            ("rediss", rest)
        } else {
            return Err(bad_url());
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (node_userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (format!("{userinfo}@"), rest),
            None => (String::new(), rest),
        };
        let (hosts, path) = rest.split_once('/').ok_or_else(bad_url)?;
        let mut path = path.split('/');
        let service = path
            .next()
            .filter(|s| valid_service(s))
            .ok_or_else(bad_url)?;
        let db = match path.next() {
            None | Some("") => 0,
            Some(db) => db.parse::<i64>().map_err(|_| bad_url())?,
        };
        if path.next().is_some() {
            return Err(bad_url());
        }
        let (mut sentinel_user, mut sentinel_password) = (String::new(), String::new());
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("sentinel_user", user)) => user.clone_into(&mut sentinel_user),
                Some(("sentinel_password", pw)) => pw.clone_into(&mut sentinel_password),
                _ => return Err(bad_url()),
            }
        }
        let sentinel_userinfo = if sentinel_password.is_empty() {
            String::new()
        } else {
            format!("{sentinel_user}:{sentinel_password}@")
        };
        let mut sentinels = Vec::new();
        let mut shown = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err(bad_url());
            }
            // `[::1]:26379`, `[::1]`, `host:26379`, `host`.
            let has_port = match host.rfind(']') {
                Some(end) => host[end..].contains(':'),
                None => host.contains(':'),
            };
            let addr = if has_port {
                host.to_owned()
            } else {
                format!("{host}:{DEFAULT_PORT}")
            };
            let client = Client::open(format!("{node_scheme}://{sentinel_userinfo}{addr}"))
                .map_err(|_| bad_url())?;
            sentinels.push(client);
            shown.push(addr);
        }
        let location = format!(
            "{node_scheme}+sentinel://{}/{service}{}",
            shown.join(","),
            if db == 0 {
                String::new()
            } else {
                format!("/{db}")
            }
        );
        Ok(Self {
            sentinels,
            service: service.to_owned(),
            node_scheme,
            node_userinfo,
            db,
            location,
            preferred: AtomicUsize::new(0),
        })
    }

    /// The URL without credentials.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Asks the sentinels for the current primary, the one that answered last first; the
    /// first that answers wins (a sentinel reports the primary of the latest configuration
    /// epoch it knows). Returns the primary's client and its `host:port`.
    pub fn primary(&self) -> Result<(Client, String), BackendError> {
        let first = self.preferred.load(Ordering::Relaxed);
        let count = self.sentinels.len();
        for i in (0..count).map(|k| (first + k) % count) {
            let Ok(Some((host, port))) = ask(&self.sentinels[i], &self.service) else {
                continue;
            };
            self.preferred.store(i, Ordering::Relaxed);
            let host_port = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let url = format!(
                "{}://{}{host_port}/{}",
                self.node_scheme, self.node_userinfo, self.db
            );
            let Ok(client) = Client::open(url) else {
                continue;
            };
            return Ok((client, host_port));
        }
        Err(BackendError::Unavailable(format!(
            "no sentinel of {} named a primary for service {} — are the sentinels running?",
            self.location, self.service
        )))
    }
}

/// A service name as Sentinel accepts it (and safe to show).
fn valid_service(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn ask(sentinel: &Client, service: &str) -> RedisResult<Option<(String, u16)>> {
    let mut conn = sentinel.get_connection_with_timeout(SENTINEL_TIMEOUT)?;
    conn.set_read_timeout(Some(SENTINEL_TIMEOUT))?;
    conn.set_write_timeout(Some(SENTINEL_TIMEOUT))?;
    let answer: Option<(String, u16)> = ::redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(service)
        .query(&mut conn)?;
    Ok(answer)
}

/// Whether the server on `conn` is a primary (`ROLE` answers `master`): right after a
/// failover a sentinel can still name a server that is being demoted.
pub fn is_primary(conn: &mut Connection) -> RedisResult<bool> {
    let role: Vec<::redis::Value> = ::redis::cmd("ROLE").query(conn)?;
    Ok(
        matches!(role.first(), Some(::redis::Value::BulkString(b)) if b == b"master")
            || matches!(role.first(), Some(::redis::Value::SimpleString(s)) if s == "master"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_parse_and_never_show_credentials() {
        let s = Sentinels::parse(
            "redis+sentinel://app:s3cr3t-pw@10.0.0.1,10.0.0.2:26380,[::1]/vault/2\
             ?sentinel_password=s3cr3t-sp",
        )
        .unwrap();
        assert_eq!(
            s.location(),
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]:26379/vault/2"
        );
        assert_eq!(s.service(), "vault");
        assert_eq!(s.sentinels.len(), 3);
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let tls = Sentinels::parse("rediss+sentinel://h/mymaster").unwrap();
        assert_eq!(tls.location(), "rediss+sentinel://h:26379/mymaster");
    }

    #[test]
    fn bad_sentinel_urls_are_refused_without_echoing_them() {
        for bad in [
            "redis+sentinel://u:s3cr3t-pw@h1,h2",
            "redis+sentinel://u:s3cr3t-pw@h1//",
            "redis+sentinel://u:s3cr3t-pw@h1/svc/notadb",
            "redis+sentinel://u:s3cr3t-pw@h1,,h2/svc",
            "redis+sentinel://u:s3cr3t-pw@h1/svc?what=s3cr3t",
            "redis+sentinel://h1/bad service",
        ] {
            let err = Sentinels::parse(bad).expect_err(bad).to_string();
            assert!(!err.contains("s3cr3t"), "{err}");
            assert!(err.contains("redis+sentinel://"), "{err}");
        }
    }
}
