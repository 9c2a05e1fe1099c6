//! Reads while Redis is away: an unlocked agent whose Redis is stopped keeps answering
//! RETRIEVE, LIST and HISTORY from what it last read or wrote (never older), says
//! `degraded` (and since when) in DISCOVER and STATUS, marks those reads `"stale": true` in
//! the audit log, answers `BACKEND_UNAVAILABLE` for what it has no copy of and for every
//! write — and is back to normal when Redis is.

use avp_protocol::{BackendStatus, ErrorCode, Request, Response, Timestamp};
use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::sentinel::wait_until;
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::time::Duration;

fn backend(conn: &mut Conn) -> (BackendStatus, Option<Timestamp>) {
    match conn.call(&Request::Discover) {
        Response::Discover(info) => (info.backend.status, info.backend.degraded_since),
        other => panic!("discover: {other:?}"),
    }
}

fn agent_on(server: &RedisServer, extra: &[&str]) -> TestAgent {
    let mut args = agent_args(&server.url());
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    TestAgent::start_with(AgentOptions {
        args,
        ..AgentOptions::default()
    })
}

fn versions(response: &Response) -> Vec<u32> {
    match response {
        Response::History(h) => h.versions.iter().map(|v| v.version).collect(),
        other => panic!("history: {other:?}"),
    }
}

/// The audit lines for `operation` on `name`, once the flusher has written them.
fn audit_lines(agent: &TestAgent, operation: &str, name: &str, at_least: usize) -> Vec<String> {
    let mut lines = Vec::new();
    wait_until(Duration::from_secs(10), "audit lines", || {
        let log = std::fs::read_to_string(&agent.audit_log).unwrap_or_default();
        lines = log
            .lines()
            .filter(|l| {
                l.contains(&format!("\"operation\":\"{operation}\""))
                    && l.contains(&format!("\"name\":\"{name}\""))
            })
            .map(str::to_owned)
            .collect();
        lines.len() >= at_least
    });
    lines
}

#[test]
fn an_unlocked_agent_keeps_reading_what_it_last_saw_while_redis_is_down() {
    let mut server = RedisServer::start_tcp();
    let a = agent_on(&server, &[]);
    a.init();
    let b = agent_on(&server, &[]);
    assert!(matches!(b.unlock(), Response::Unlocked));
    let (mut ca, mut cb) = (a.connect(), b.connect());
    let (sa, sb) = (ca.session("w"), cb.session("w"));

    // A writes `written` (acknowledged) and `read` v1; B moves `read` to v2, which A reads;
    // B moves `seen` to v2 after A read v1 of it, and A learns of v2 only through HISTORY.
    for (name, value) in [("written", "w1"), ("read", "r1"), ("seen", "s1")] {
        assert!(matches!(
            ca.store(&sa, name, value.as_bytes()),
            Response::Stored(_)
        ));
    }
    assert!(matches!(cb.store(&sb, "read", b"r2"), Response::Stored(_)));
    assert_eq!(ca.value(&sa, "read"), Ok(b"r2".to_vec()));
    assert_eq!(ca.value(&sa, "seen"), Ok(b"s1".to_vec()));
    assert!(matches!(cb.store(&sb, "seen", b"s2"), Response::Stored(_)));
    assert_eq!(versions(&ca.history(&sa, "seen")), [1, 2]);
    assert!(matches!(
        cb.store(&sb, "unknown-to-a", b"u"),
        Response::Stored(_)
    ));
    assert_eq!(ca.names(&sa), ["read", "seen", "unknown-to-a", "written"]);
    assert_eq!(ca.value(&sa, "written"), Ok(b"w1".to_vec()));
    assert_eq!(backend(&mut ca), (BackendStatus::Available, None));

    let before = Timestamp::now();
    server.kill();

    // Reads answer from what A last read or wrote — never older.
    assert_eq!(ca.value(&sa, "written"), Ok(b"w1".to_vec()));
    assert_eq!(
        ca.value(&sa, "read"),
        Ok(b"r2".to_vec()),
        "not the older r1"
    );
    let unavailable = Some(ErrorCode::BackendUnavailable);
    assert_eq!(
        code_of(&ca.retrieve(&sa, "seen", None)),
        unavailable,
        "A knows v2 exists, has only v1's value: no older value"
    );
    assert_eq!(
        code_of(&ca.retrieve(&sa, "never-stored", None)),
        unavailable,
        "unknown is BACKEND_UNAVAILABLE, not SECRET_NOT_FOUND"
    );
    assert_eq!(
        code_of(&ca.retrieve(&sa, "read", Some(1))),
        unavailable,
        "older versions are not kept"
    );
    assert_eq!(versions(&ca.history(&sa, "read")), [1, 2]);
    assert_eq!(ca.names(&sa), ["read", "seen", "unknown-to-a", "written"]);
    let (status, since) = backend(&mut ca);
    assert_eq!(status, BackendStatus::Degraded);
    let since = since.expect("degraded since");
    assert!(since.unix() >= before.unix(), "{since:?} vs {before:?}");
    let st = ca.status();
    assert_eq!(
        (st.backend_status, st.degraded_since),
        (BackendStatus::Degraded, Some(since))
    );

    // Writes fail, and say why.
    for write in [
        ca.store(&sa, "written", b"w2"),
        ca.rotate(&sa, "read", b"r3"),
        ca.delete(&sa, "written"),
    ] {
        assert_eq!(code_of(&write), unavailable, "{write:?}");
    }
    assert_eq!(ca.value(&sa, "written"), Ok(b"w1".to_vec()));

    // The audit log tells stale reads apart.
    let lines = audit_lines(&a, "RETRIEVE", "written", 2);
    assert!(!lines[0].contains("stale"), "{}", lines[0]);
    assert!(lines[1].contains("\"stale\":true"), "{}", lines[1]);
    let unknown = audit_lines(&a, "RETRIEVE", "never-stored", 1);
    assert!(!unknown[0].contains("stale"), "{}", unknown[0]);

    // Back: fresh reads, writes, available.
    server.restart();
    assert!(matches!(
        ca.store(&sa, "written", b"w2"),
        Response::Stored(_)
    ));
    assert_eq!(ca.value(&sa, "seen"), Ok(b"s2".to_vec()));
    assert_eq!(backend(&mut ca), (BackendStatus::Available, None));
    assert_eq!(ca.status().backend_status, BackendStatus::Available);

    // Locking drops the kept copies: locked and unreachable is plain unavailable.
    server.kill();
    assert_eq!(ca.value(&sa, "written"), Ok(b"w2".to_vec()));
    assert!(matches!(ca.lock(), Response::Locked));
    assert_eq!(backend(&mut ca).0, BackendStatus::Unavailable);
}

#[test]
fn stale_reads_can_be_turned_off_and_end_after_their_window() {
    let mut server = RedisServer::start_tcp();
    let strict = agent_on(&server, &["--redis-stale-reads", "0"]);
    strict.init();
    let brief = agent_on(&server, &["--redis-stale-reads", "1s"]);
    assert!(matches!(brief.unlock(), Response::Unlocked));
    let (mut cs, mut cb) = (strict.connect(), brief.connect());
    let (ss, sb) = (cs.session("w"), cb.session("w"));
    assert!(matches!(cs.store(&ss, "k", b"v"), Response::Stored(_)));
    assert_eq!(cb.value(&sb, "k"), Ok(b"v".to_vec()));
    server.kill();

    let unavailable = Err(ErrorCode::BackendUnavailable);
    assert_eq!(cs.value(&ss, "k"), unavailable, "strict: no stale reads");
    assert_eq!(backend(&mut cs).0, BackendStatus::Unavailable);
    // The window counts from the last successful contact; poll past it.
    wait_until(Duration::from_secs(10), "the stale window closes", || {
        cb.value(&sb, "k") == unavailable
    });
    assert_eq!(backend(&mut cb).0, BackendStatus::Unavailable);
}
