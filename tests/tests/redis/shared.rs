//! Two agents on two vault directories sharing one Redis: `init` on one and `unlock` on the
//! other open the same vault; each sees the other's writes at once; concurrent writers
//! across both lose no update and never reuse a version number.

use avp_protocol::{BackendStatus, ExpiryChange, Request, Response, VaultState};
use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::wire::{code_of, labels};
use avp_tests::{AgentOptions, TestAgent};
use std::collections::BTreeMap;

fn agent_on(url: &str) -> TestAgent {
    TestAgent::start_with(AgentOptions {
        args: agent_args(url),
        ..AgentOptions::default()
    })
}

fn discover(agent: &TestAgent) -> avp_protocol::DiscoverInfo {
    match agent.connect().call(&Request::Discover) {
        Response::Discover(info) => info,
        other => panic!("discover: {other:?}"),
    }
}

fn version_of(response: Response) -> u32 {
    match response {
        Response::Stored(r) => r.version,
        Response::Rotated(r) => r.new_version,
        other => panic!("write: unexpected {other:?}"),
    }
}

#[test]
fn init_on_one_agent_and_unlock_on_another_open_the_same_vault() {
    let server = RedisServer::start_tcp();
    let a = agent_on(&server.url());
    let b = agent_on(&server.url());
    assert_eq!(b.connect().status().state, VaultState::Uninitialized);
    a.init();
    let status = b.connect().status();
    assert_eq!(
        status.state,
        VaultState::Locked,
        "b sees the vault a created"
    );
    assert_eq!(status.backend, "redis");
    assert_eq!(
        status.vault_location,
        server.url(),
        "the URL, without credentials"
    );
    let info = discover(&b);
    assert_eq!(
        (info.backend.name.as_str(), info.backend.status),
        ("redis", BackendStatus::Locked)
    );
    // Init on b now is refused: the vault exists (in Redis, not in b's directory).
    let again = b.connect().call(&Request::Init {
        passphrase: avp_protocol::Passphrase::new("another"),
        work_factor: Some(10),
    });
    assert!(code_of(&again).is_some(), "{again:?}");
    assert!(matches!(b.unlock(), Response::Unlocked));
    assert_eq!(discover(&b).backend.status, BackendStatus::Available);

    let mut ca = a.connect();
    let mut cb = b.connect();
    let (sa, sb) = (ca.session("team"), cb.session("team"));
    version_of(ca.store_full(
        &sa,
        "DB_URL",
        b"postgres://a",
        Some(labels(&[("env", "prod")])),
        ExpiryChange::Keep,
    ));
    assert_eq!(
        cb.value(&sb, "DB_URL"),
        Ok(b"postgres://a".to_vec()),
        "b reads a's write"
    );
    assert_eq!(cb.names(&sb), ["DB_URL"]);
    assert_eq!(version_of(cb.rotate(&sb, "DB_URL", b"postgres://b")), 2);
    assert_eq!(
        ca.value(&sa, "DB_URL"),
        Ok(b"postgres://b".to_vec()),
        "a reads b's write"
    );
    version_of(cb.store(&sb, "API_KEY", b"k"));
    assert_eq!(
        ca.names(&sa),
        ["API_KEY", "DB_URL"],
        "a's listing is not stale"
    );
    match ca.retrieve(&sa, "DB_URL", None) {
        Response::Retrieved(secret) => {
            assert_eq!(secret.labels, labels(&[("env", "prod")]), "labels kept");
            assert_eq!(secret.version, 2);
        }
        other => panic!("retrieve: {other:?}"),
    }
    assert!(matches!(ca.delete(&sa, "API_KEY"), Response::Deleted(r) if r.deleted));
    assert_eq!(cb.names(&sb), ["DB_URL"]);
    assert_eq!(cb.status().secrets, 1);
    // Nothing of the vault is written in either agent's vault directory.
    for agent in [&a, &b] {
        let files: Vec<_> = std::fs::read_dir(&agent.vault)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(files.is_empty(), "{files:?}");
    }
}

#[test]
fn eight_concurrent_writers_across_two_agents_lose_nothing() {
    const NAMES: [&str; 3] = ["SHARED_A", "SHARED_B", "SHARED_C"];
    const PER_WRITER: usize = 30;
    let server = RedisServer::start_tcp();
    let a = agent_on(&server.url());
    let b = agent_on(&server.url());
    a.init();
    assert!(matches!(b.unlock(), Response::Unlocked));
    {
        let mut conn = a.connect();
        let s = conn.session("w");
        for name in NAMES {
            assert_eq!(version_of(conn.store(&s, name, b"seed")), 1);
        }
    }
    // Every acknowledged write: (name, version) → value.
    let acknowledged: Vec<Vec<(String, u32, Vec<u8>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|writer| {
                let agent = if writer % 2 == 0 { &a } else { &b };
                scope.spawn(move || {
                    let mut conn = agent.connect();
                    let s = conn.session("w");
                    let mut mine = Vec::new();
                    for i in 0..PER_WRITER {
                        let name = NAMES[(writer + i) % NAMES.len()];
                        let value = format!("writer{writer}-op{i}").into_bytes();
                        let response = if i % 2 == 0 {
                            conn.store(&s, name, &value)
                        } else {
                            conn.rotate(&s, name, &value)
                        };
                        mine.push((name.to_owned(), version_of(response), value));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect()
    });
    let mut by_name: BTreeMap<String, BTreeMap<u32, Vec<u8>>> = BTreeMap::new();
    for (name, version, value) in acknowledged.into_iter().flatten() {
        let previous = by_name
            .entry(name.clone())
            .or_default()
            .insert(version, value);
        assert!(
            previous.is_none(),
            "{name} version {version} was issued twice"
        );
    }
    let total: usize = by_name.values().map(BTreeMap::len).sum();
    assert_eq!(total, 8 * PER_WRITER);
    let mut conn = b.connect();
    let s = conn.session("w");
    for (name, versions) in &by_name {
        // The seed was 1; every acknowledged write got the next number, none skipped.
        let numbers: Vec<u32> = versions.keys().copied().collect();
        let last = 1 + numbers.len() as u32;
        assert_eq!(numbers, (2..=last).collect::<Vec<_>>(), "{name}");
        assert_eq!(
            conn.value(&s, name).as_deref(),
            Ok(&versions[&last][..]),
            "{name}"
        );
        // The retained history holds exactly what each acknowledged write stored.
        for version in last.saturating_sub(9).max(2)..=last {
            match conn.retrieve(&s, name, Some(version)) {
                Response::Retrieved(secret) => assert_eq!(
                    secret.value.expose_secret(),
                    &versions[&version][..],
                    "{name} v{version}"
                ),
                other => panic!("{name} v{version}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_password_in_the_url_never_shows() {
    const PASSWORD: &str = "redis-pw-MARKER-42";
    let server = RedisServer::start_with(0, vec!["--requirepass".into(), PASSWORD.into()]);
    let url = format!("{}?pass={PASSWORD}", server.unix_url());
    let help = std::process::Command::new(avp_tests::agent_bin())
        .arg("--help")
        .env("AVP_REDIS_URL", &url)
        .output()
        .expect("avp-agent --help");
    assert!(help.status.success());
    assert!(
        !String::from_utf8_lossy(&help.stdout).contains(PASSWORD),
        "--help"
    );
    // Through the environment, as the README recommends (argv is world-readable).
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--backend".into(), "redis".into()],
        env: vec![("AVP_REDIS_URL".into(), url)],
        ..AgentOptions::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let s = conn.session("w");
    version_of(conn.store(&s, "K", b"v"));
    let status = conn.status();
    assert_eq!(status.vault_location, server.unix_url());
    assert!(!agent.logs().contains(PASSWORD), "{}", agent.logs());

    // A wrong password: the agent runs, and says what is wrong without echoing it.
    let wrong = TestAgent::start_with(AgentOptions {
        args: agent_args(&format!("{}?pass=not-{PASSWORD}", server.unix_url())),
        ..AgentOptions::default()
    });
    let response = wrong.unlock();
    match &response {
        Response::Error(e) => {
            assert_eq!(e.code, avp_protocol::ErrorCode::BackendUnavailable);
            assert!(e.message.contains("credentials"), "{}", e.message);
            assert!(!e.message.contains(PASSWORD), "{}", e.message);
        }
        other => panic!("unlock with a wrong Redis password: {other:?}"),
    }
    assert!(!wrong.logs().contains(PASSWORD));
}

/// The README's least-privilege ACL: exactly these commands on keys `avp:1:*`.
const ACL_COMMANDS: &str = "get set exists del incr hget hmget hset hdel hexists hlen hgetall \
                            sadd srem smembers rpush ltrim lindex lrange eval evalsha script|load";

#[test]
fn a_least_privilege_acl_user_is_enough() {
    let mut acl = vec![
        "--user", "default", "off", "--user", "avp", "on", ">acl-pw", "~avp:1:*", "-@all",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    acl.extend(ACL_COMMANDS.split_whitespace().map(|c| format!("+{c}")));
    let server = RedisServer::start_with(0, acl);
    let url = format!("{}?user=avp&pass=acl-pw", server.unix_url());
    let a = agent_on(&url);
    let b = agent_on(&url);
    a.init();
    let mut conn = a.connect();
    let s = conn.session("w");
    let expiry = avp_protocol::Timestamp::from_unix(avp_protocol::Timestamp::now().unix() + 3600);
    version_of(conn.store_full(
        &s,
        "K",
        b"v1",
        Some(labels(&[("a", "b")])),
        ExpiryChange::Set(expiry),
    ));
    version_of(conn.store(&s, "K", b"v2"));
    assert_eq!(version_of(conn.rotate(&s, "K", b"v3")), 3);
    assert!(matches!(conn.history(&s, "K"), Response::History(h) if h.versions.len() == 3));
    assert_eq!(conn.names(&s), ["K"]);
    assert_eq!(conn.status().secrets, 1);
    assert!(matches!(b.unlock(), Response::Unlocked));
    let mut other = b.connect();
    let t = other.session("w");
    assert_eq!(other.value(&t, "K"), Ok(b"v3".to_vec()));
    version_of(other.store(&t, "L", b"x"));
    assert_eq!(conn.names(&s), ["K", "L"], "a catches up with b's write");
    assert!(matches!(other.delete(&t, "K"), Response::Deleted(r) if r.deleted));
    let passwd = conn.call(&Request::ChangePassphrase {
        old: avp_protocol::Passphrase::new(avp_tests::TEST_PASSPHRASE),
        new: avp_protocol::Passphrase::new("another passphrase"),
    });
    assert!(matches!(passwd, Response::PassphraseChanged), "{passwd:?}");
}
