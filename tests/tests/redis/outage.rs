//! Redis killed and restarted under a running agent with `--redis-stale-reads 0`:
//! `BACKEND_UNAVAILABLE` (and DISCOVER `unavailable`) while it is down, the agent keeps running, full service once it is back,
//! and every write the agent acknowledged is still there (Redis persists with
//! `appendfsync always`).

use avp_protocol::{BackendStatus, ErrorCode, Request, Response, SessionId};
use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn backend_status(conn: &mut Conn) -> BackendStatus {
    match conn.call(&Request::Discover) {
        Response::Discover(info) => info.backend.status,
        other => panic!("discover: {other:?}"),
    }
}

/// Stores `k{i}` = `v{i}` until told to stop; returns what was acknowledged and every
/// error code seen.
fn writer(agent: &TestAgent, stop: &AtomicBool) -> (Vec<usize>, Vec<ErrorCode>) {
    let mut conn = agent.connect();
    let session: SessionId = conn.session("w");
    let (mut acked, mut errors) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        match conn.store(&session, &format!("k{i}"), format!("v{i}").as_bytes()) {
            Response::Stored(_) => acked.push(i),
            other => errors.push(code_of(&other).expect("an error")),
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    (acked, errors)
}

#[test]
fn redis_killed_and_restarted_mid_run_loses_no_acknowledged_write() {
    let mut server = RedisServer::start_tcp();
    // Strict: no reads from last-known state (stale.rs tests those).
    let mut args = agent_args(&server.url());
    args.extend(["--redis-stale-reads".into(), "0".into()]);
    let agent = TestAgent::start_with(AgentOptions {
        args,
        ..AgentOptions::default()
    });
    agent.init();
    let stop = AtomicBool::new(false);
    let (acked, errors) = std::thread::scope(|scope| {
        let running = scope.spawn(|| writer(&agent, &stop));
        std::thread::sleep(Duration::from_millis(300));
        server.kill();

        // Down: every secret operation says so, DISCOVER says so, the agent runs on.
        let mut conn = agent.connect();
        let s = conn.session("w");
        let down = conn.store(&s, "during", b"x");
        assert_eq!(
            code_of(&down),
            Some(ErrorCode::BackendUnavailable),
            "{down:?}"
        );
        if let Response::Error(e) = &down {
            let want = format!("cannot reach Redis at {} — is it running?", server.url());
            assert!(e.message.contains(&want), "{}", e.message);
        }
        assert_eq!(
            code_of(&conn.retrieve(&s, "k0", None)),
            Some(ErrorCode::BackendUnavailable)
        );
        assert_eq!(backend_status(&mut conn), BackendStatus::Unavailable);
        assert_eq!(conn.status().vault_location, server.url());
        std::thread::sleep(Duration::from_millis(300));

        server.restart();
        // Back (Redis answers PING, so its AOF is loaded): the very next operation
        // succeeds — the agent's dead pooled connections are replaced, not reused.
        let after = conn.store(&s, "after", b"y");
        assert!(matches!(after, Response::Stored(_)), "{after:?}");
        assert_eq!(backend_status(&mut conn), BackendStatus::Available);
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        running.join().expect("writer")
    });
    assert!(
        errors.iter().all(|&c| c == ErrorCode::BackendUnavailable),
        "only BACKEND_UNAVAILABLE while down: {errors:?}"
    );
    assert!(!errors.is_empty(), "the writer ran into the outage");
    assert!(acked.len() > 20, "writes before and after: {}", acked.len());

    // Everything acknowledged is there — also for an agent that starts afresh.
    let fresh = TestAgent::start_with(AgentOptions {
        args: agent_args(&server.url()),
        ..AgentOptions::default()
    });
    assert!(matches!(fresh.unlock(), Response::Unlocked));
    let mut conn = fresh.connect();
    let s = conn.session("w");
    for i in &acked {
        assert_eq!(
            conn.value(&s, &format!("k{i}")),
            Ok(format!("v{i}").into_bytes()),
            "acknowledged write k{i} lost"
        );
    }
    assert_eq!(conn.value(&s, "after"), Ok(b"y".to_vec()));
}

#[test]
fn an_agent_started_while_redis_is_down_serves_once_it_is_up() {
    let mut server = RedisServer::start_tcp();
    server.kill();
    let agent = TestAgent::start_with(AgentOptions {
        args: agent_args(&server.url()),
        ..AgentOptions::default()
    });
    let mut conn = agent.connect();
    let init = conn.call(&Request::Init {
        passphrase: avp_protocol::Passphrase::new(avp_tests::TEST_PASSPHRASE),
        work_factor: Some(avp_tests::TEST_WORK_FACTOR),
    });
    assert_eq!(
        code_of(&init),
        Some(ErrorCode::BackendUnavailable),
        "{init:?}"
    );
    assert_eq!(backend_status(&mut conn), BackendStatus::Unavailable);
    server.restart();
    agent.init();
    let s = conn.session("w");
    assert!(matches!(conn.store(&s, "k", b"v"), Response::Stored(_)));
    assert_eq!(conn.value(&s, "k"), Ok(b"v".to_vec()));
}
