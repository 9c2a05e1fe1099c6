//! The conformance suite against the Redis backend, each rule on its own real
//! `redis-server` (unix socket in a temp dir, persistence on) — plus the properties only a
//! shared store has: a second unlocked backend on the same Redis sees every write at once,
//! passphrase changes are atomic and shared, tampered records are refused, and an outage is
//! `BACKEND_UNAVAILABLE` followed by full service.
#![cfg(feature = "redis")]

// avp-tests depends on avp-agent (for avp-bench), so depending on it here would build the
// agent twice; the helper's one file is compiled in instead.
#[allow(dead_code)]
#[path = "../../tests/src/redis.rs"]
mod redis_server;

use avp_agent::storage::conformance::Subject;
use avp_agent::storage::redis::RedisKeyStore;
use avp_agent::storage::{Backend, BackendError, BackendSettings, KeyStore};
use avp_protocol::{
    ErrorCode, ExpiryChange, Labels, Passphrase, SecretName, SecretValue, Timestamp, WorkspaceId,
};
use redis_server::RedisServer;

const PASS: &str = "correct horse battery staple";

fn unlocked(server: &RedisServer, settings: BackendSettings) -> Box<dyn Backend> {
    let store = RedisKeyStore::open(&server.url(), settings).expect("open");
    match store.unlock(&Passphrase::new(PASS)) {
        Ok(backend) => backend,
        Err(BackendError::NotInitialized) => store.init(&Passphrase::new(PASS), 10).expect("init"),
        Err(err) => panic!("unlock: {err}"),
    }
}

/// A fresh vault in a fresh Redis, at a low (real) scrypt work factor.
fn redis(settings: BackendSettings) -> Subject {
    let server = RedisServer::start();
    let backend = unlocked(&server, settings);
    Subject::with_guard(backend, server)
}

mod redis {
    avp_agent::backend_conformance!(super::redis);
}

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::new(id).unwrap()
}

fn name(n: &str) -> SecretName {
    SecretName::new(n).unwrap()
}

fn put(b: &dyn Backend, n: &str, v: &[u8]) -> u32 {
    b.store(
        &ws("w"),
        &name(n),
        SecretValue::from_slice(v),
        None,
        ExpiryChange::Keep,
        Timestamp::now(),
    )
    .expect("store")
    .version
}

fn get(b: &dyn Backend, n: &str) -> Result<Vec<u8>, ErrorCode> {
    b.retrieve(&ws("w"), &name(n), None, Timestamp::now())
        .map(|s| s.value.expose_secret().to_vec())
        .map_err(|e| e.code())
}

fn listed(b: &dyn Backend) -> Vec<(String, u32)> {
    b.list(&ws("w"), &Labels::empty(), None, 1000, Timestamp::now())
        .expect("list")
        .secrets
        .into_iter()
        .map(|m| (m.name.as_str().to_owned(), m.version))
        .collect()
}

#[test]
fn a_second_agent_sees_every_write_at_once() {
    let server = RedisServer::start();
    let a = unlocked(&server, BackendSettings::default());
    let b = unlocked(&server, BackendSettings::default());
    put(&*a, "k1", b"one");
    assert_eq!(listed(&*b), [("k1".to_owned(), 1)], "b lists a's write");
    assert_eq!(listed(&*a), [("k1".to_owned(), 1)]);
    put(&*b, "k1", b"two");
    put(&*b, "k2", b"x");
    assert_eq!(get(&*a, "k1"), Ok(b"two".to_vec()), "a reads b's write");
    assert_eq!(
        listed(&*a),
        [("k1".to_owned(), 2), ("k2".to_owned(), 1)],
        "a's cached listing is refreshed by b's writes"
    );
    assert!(a.delete(&ws("w"), &name("k1"), Timestamp::now()).unwrap());
    assert_eq!(listed(&*b), [("k2".to_owned(), 1)]);
    assert_eq!(get(&*b, "k1"), Err(ErrorCode::SecretNotFound));
    assert_eq!(b.counts(Timestamp::now()).secrets, 1);
}

#[test]
fn concurrent_writers_lose_nothing_and_never_reuse_a_version() {
    let server = RedisServer::start();
    let backends: Vec<Box<dyn Backend>> = (0..2)
        .map(|_| unlocked(&server, BackendSettings::default()))
        .collect();
    let versions = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for writer in 0..8 {
            let backend = &backends[writer % 2];
            let versions = &versions;
            scope.spawn(move || {
                for i in 0..25 {
                    let v = put(&**backend, "shared", format!("{writer}-{i}").as_bytes());
                    versions.lock().unwrap().push(v);
                }
            });
        }
    });
    let mut versions = versions.into_inner().unwrap();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=200).collect::<Vec<u32>>(),
        "every version once"
    );
    let current = backends[0]
        .retrieve(&ws("w"), &name("shared"), None, Timestamp::now())
        .unwrap();
    assert_eq!(current.version, 200);
}

#[test]
fn the_passphrase_is_shared_and_changed_atomically() {
    let server = RedisServer::start();
    let settings = BackendSettings::default();
    let a = RedisKeyStore::open(&server.url(), settings).unwrap();
    assert!(!a.is_initialized().unwrap());
    let backend = a.init(&Passphrase::new(PASS), 10).unwrap();
    put(&*backend, "k", b"v");
    let b = RedisKeyStore::open(&server.url(), settings).unwrap();
    assert!(b.is_initialized().unwrap());
    assert!(matches!(
        b.init(&Passphrase::new("other"), 10),
        Err(BackendError::AlreadyInitialized)
    ));
    assert!(matches!(
        b.unlock(&Passphrase::new("wrong")),
        Err(BackendError::AuthenticationFailed(_))
    ));
    b.change_passphrase(&Passphrase::new(PASS), &Passphrase::new("new pass"))
        .unwrap();
    assert!(a.unlock(&Passphrase::new(PASS)).is_err(), "old one is gone");
    let reopened = a.unlock(&Passphrase::new("new pass")).unwrap();
    assert_eq!(get(&*reopened, "k"), Ok(b"v".to_vec()), "records untouched");
    assert!(matches!(
        b.change_passphrase(&Passphrase::new(PASS), &Passphrase::new("x")),
        Err(BackendError::AuthenticationFailed(_))
    ));
}

#[test]
fn moved_or_altered_records_are_integrity_errors() {
    use ::redis::Commands;
    let server = RedisServer::start();
    let b = unlocked(&server, BackendSettings::default());
    put(&*b, "a", b"alpha");
    put(&*b, "b", b"beta");
    put(&*b, "b", b"beta-2");
    let mut redis = ::redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let meta_key = server
        .keys()
        .into_iter()
        .find(|k| k.ends_with(":meta"))
        .unwrap();
    let gen_key = meta_key.replace(":meta", ":gen");
    let metas: std::collections::HashMap<String, Vec<u8>> = redis.hgetall(&meta_key).unwrap();
    let (fields, records): (Vec<String>, Vec<Vec<u8>>) = metas.into_iter().unzip();
    let secret_key = |field: &str| format!("avp:1:s:{field}");

    // Two versions of "b" swap places: version 2's field holds version 1's record.
    let b_field = fields
        .iter()
        .find(|f| {
            let len: usize = redis.hlen(secret_key(f)).unwrap();
            len == 3
        })
        .unwrap()
        .clone();
    let b_hash: std::collections::HashMap<String, Vec<u8>> =
        redis.hgetall(secret_key(&b_field)).unwrap();
    let current = String::from_utf8(b_hash["c"].clone()).unwrap();
    let old = b_hash.keys().find(|k| *k != "c" && **k != current).unwrap();
    let _: () = redis
        .hset(secret_key(&b_field), &current, &b_hash[old])
        .unwrap();
    assert_eq!(
        get(&*b, "b"),
        Err(ErrorCode::IntegrityError),
        "swapped version"
    );

    // The two secrets' metadata and hashes swap places, pointers and all: each name now
    // finds the other's (authentic) records.
    let _: () = redis.hset(&meta_key, &fields[0], &records[1]).unwrap();
    let _: () = redis.hset(&meta_key, &fields[1], &records[0]).unwrap();
    let _: () = redis.rename(secret_key(&fields[0]), "avp:1:tmp").unwrap();
    let _: () = redis
        .rename(secret_key(&fields[1]), secret_key(&fields[0]))
        .unwrap();
    let _: () = redis.rename("avp:1:tmp", secret_key(&fields[1])).unwrap();
    assert_eq!(
        get(&*b, "a"),
        Err(ErrorCode::IntegrityError),
        "moved secret"
    );

    // Garbage in a metadata record, with the generation bumped so LIST re-reads it.
    let _: () = redis
        .hset(&meta_key, &fields[0], &b"not an age file"[..])
        .unwrap();
    let _: () = redis.incr(&gen_key, 1).unwrap();
    let r = b.list(&ws("w"), &Labels::empty(), None, 10, Timestamp::now());
    assert_eq!(r.unwrap_err().code(), ErrorCode::IntegrityError);
}

#[test]
fn an_outage_is_backend_unavailable_then_service_resumes() {
    let mut server = RedisServer::start();
    let b = unlocked(&server, BackendSettings::default());
    put(&*b, "k", b"before");
    server.kill();
    let down = b.store(
        &ws("w"),
        &name("k"),
        SecretValue::from_slice(b"x"),
        None,
        ExpiryChange::Keep,
        Timestamp::now(),
    );
    let err = down.expect_err("Redis is down");
    assert_eq!(err.code(), ErrorCode::BackendUnavailable);
    assert!(err.to_string().contains("is it running?"), "{err}");
    // What this backend wrote is still read from its last-known copy; anything else is
    // unavailable (not "not found").
    assert_eq!(get(&*b, "k"), Ok(b"before".to_vec()));
    assert_eq!(get(&*b, "other"), Err(ErrorCode::BackendUnavailable));
    server.restart();
    assert_eq!(
        get(&*b, "k"),
        Ok(b"before".to_vec()),
        "persisted and reconnected"
    );
    assert_eq!(put(&*b, "k", b"after"), 2);
}

#[test]
fn a_cold_listing_of_thousands_is_decrypted_once() {
    let server = RedisServer::start();
    let writer = unlocked(&server, BackendSettings::default());
    for i in 0..1500 {
        put(&*writer, &format!("k{i:05}"), b"v");
    }
    let reader = unlocked(&server, BackendSettings::default());
    let mut pages = 0;
    let mut after: Option<SecretName> = None;
    let started = std::time::Instant::now();
    loop {
        let page = reader
            .list(
                &ws("w"),
                &Labels::empty(),
                after.as_ref(),
                100,
                Timestamp::now(),
            )
            .unwrap();
        pages += 1;
        match page.next_cursor {
            Some(cursor) => after = Some(cursor.position().unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 15);
    // 15 pages, one cold snapshot: decrypting 1,500 records per page would take seconds.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn write_scripts_compare_and_set_and_are_idempotent() {
    use avp_agent::storage::redis::keys::KeyNames;
    use avp_agent::storage::redis::scripts::{self, Outcome, Put};
    let server = RedisServer::start();
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let names = KeyNames::derive(&age::x25519::Identity::generate()).unwrap();
    let w = names.workspace(&ws("w"));
    let (s1, s2) = (
        names.secret(&ws("w"), &name("a")),
        names.secret(&ws("w"), &name("b")),
    );
    let put = |expected: Option<&'static str>, tag: &'static str, restart: bool| Put {
        expected,
        tag,
        value: b"value record",
        meta: b"meta record",
        restart,
        drop: &[],
        max_secrets: 1,
    };
    let mut run = |s, p: &Put<'_>| scripts::put(&mut conn, &w, s, p).unwrap();
    assert_eq!(run(&s1, &put(None, "t1", true)), Outcome::Applied(1));
    assert_eq!(
        run(&s1, &put(None, "t1", true)),
        Outcome::AlreadyApplied,
        "a retried write is not applied twice"
    );
    assert_eq!(
        run(&s1, &put(None, "t2", true)),
        Outcome::Conflict,
        "stale read"
    );
    assert_eq!(run(&s1, &put(Some("t0"), "t2", false)), Outcome::Conflict);
    assert_eq!(run(&s1, &put(Some("t1"), "t2", false)), Outcome::Applied(2));
    assert_eq!(
        run(&s2, &put(None, "u1", true)),
        Outcome::Full,
        "limit of 1"
    );
    let mut conn = client.get_connection().unwrap();
    let mut delete =
        |expected, retry| scripts::delete(&mut conn, &w, &s1, expected, retry).unwrap();
    assert_eq!(delete("t1", false), Outcome::Conflict, "stale read");
    assert_eq!(delete("t2", false), Outcome::Applied(3));
    assert_eq!(
        delete("t2", true),
        Outcome::AlreadyApplied,
        "a retried delete"
    );
    assert_eq!(
        delete("t2", false),
        Outcome::Conflict,
        "a first attempt on nothing"
    );
    let left = server.keys();
    assert!(
        !left.contains(&s1.key) && !left.contains(&w.meta),
        "{left:?}"
    );
}

fn all_names(b: &dyn Backend) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<SecretName> = None;
    loop {
        let page = b
            .list(
                &ws("w"),
                &Labels::empty(),
                after.as_ref(),
                1000,
                Timestamp::now(),
            )
            .expect("list");
        out.extend(page.secrets.iter().map(|m| m.name.as_str().to_owned()));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor.position().unwrap()),
            None => return out,
        }
    }
}

#[test]
fn a_listing_follows_changes_rebuilds_after_a_gap_and_notices_a_restored_redis() {
    // Durability is not under test here: skip the fsync per write.
    let server = RedisServer::start_with(0, vec!["--appendfsync".into(), "no".into()]);
    let writer = unlocked(&server, BackendSettings::default());
    let reader = unlocked(&server, BackendSettings::default());
    for i in 0..5 {
        put(&*writer, &format!("a{i}"), b"v");
    }
    assert_eq!(all_names(&*reader).len(), 5);
    // A few changes: fetched as a delta (deletions included).
    assert!(
        writer
            .delete(&ws("w"), &name("a0"), Timestamp::now())
            .unwrap()
    );
    put(&*writer, "a1", b"v2");
    put(&*writer, "b0", b"v");
    assert_eq!(all_names(&*reader), ["a1", "a2", "a3", "a4", "b0"]);
    assert_eq!(listed(&*reader)[0], ("a1".to_owned(), 2));
    // More changes than the log keeps: rebuilt from everything.
    for i in 0..1100 {
        put(&*writer, &format!("c{i:04}"), b"v");
    }
    assert_eq!(all_names(&*reader).len(), 5 + 1100);
    // Redis "restored" to another history that reaches the same generation: the reader's
    // position names a write that is not there, so it rebuilds instead of trusting it.
    let generation = String::from_utf8(server.cli(&["--scan", "--pattern", "avp:1:w:*:gen"]))
        .unwrap()
        .trim()
        .to_owned();
    let count: u64 = String::from_utf8(server.cli(&["GET", &generation]))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let keys: Vec<String> = server
        .keys()
        .into_iter()
        .filter(|k| k != "avp:1:identity")
        .collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    server.cli(&del);
    for i in 0..count {
        put(&*writer, "z", format!("{i}").as_bytes());
    }
    let names = all_names(&*reader);
    assert!(
        names == ["z"],
        "a stale listing was served: {} names",
        names.len()
    );
}

/// A write whose reply was lost (the link broke, or the primary failed over after applying
/// and replicating it) is re-run; if another agent wrote on top meanwhile, the re-run must
/// answer "already applied" — not a conflict, which would make the agent write the same
/// value again as yet another version.
#[test]
fn a_put_retried_after_another_write_landed_on_top_is_not_applied_twice() {
    use avp_agent::storage::redis::keys::{KeyNames, random_tag};
    use avp_agent::storage::redis::scripts::{self, Outcome, Put};
    let server = RedisServer::start();
    let redis = avp_agent::storage::redis::Redis::open(&server.url()).unwrap();
    let names = KeyNames::derive(&age::x25519::Identity::generate()).unwrap();
    let workspace = WorkspaceId::new("w").unwrap();
    let ws = names.workspace(&workspace);
    let secret = names.secret(&workspace, &SecretName::new("k").unwrap());
    let (first, second) = (random_tag().unwrap(), random_tag().unwrap());
    let put = |expected: Option<&str>, tag: &str, restart: bool| {
        let put = Put {
            expected,
            tag,
            value: b"value record",
            meta: b"meta record",
            restart,
            drop: &[],
            max_secrets: 10,
        };
        redis
            .run(|conn, _| scripts::put(conn, &ws, &secret, &put))
            .unwrap()
    };
    assert!(matches!(put(None, &first, true), Outcome::Applied(1)));
    // Another agent's write on top of it.
    assert!(matches!(
        put(Some(&first), &second, false),
        Outcome::Applied(2)
    ));
    // The retry of the first write.
    assert!(matches!(put(None, &first, true), Outcome::AlreadyApplied));
    assert!(matches!(
        put(Some(&first), &second, false),
        Outcome::AlreadyApplied
    ));
}
