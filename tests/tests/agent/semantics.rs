//! Every rule of PROTOCOL.md §5, §8–§10, one test each, through the real `avp-agent` over its socket.

use avp_protocol::{ErrorCode, ExpiryChange, Labels, Request, Response, Timestamp};
use avp_tests::wire::{code_of, labels};
use avp_tests::{Conn, TestAgent};
use std::time::Duration;

fn setup(workspace: &str) -> (TestAgent, Conn, avp_protocol::SessionId) {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let session = conn.session(workspace);
    (agent, conn, session)
}

fn stored(response: Response) -> avp_protocol::StoreResult {
    match response {
        Response::Stored(result) => result,
        other => panic!("store: unexpected {other:?}"),
    }
}

#[test]
fn authenticate_defaults_and_clamps_the_ttl() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    for (asked, granted) in [
        (None, 3_600),
        (Some(0), 3_600),
        (Some(60), 60),
        (Some(10_000_000), 86_400),
    ] {
        match conn.authenticate("default", asked) {
            Response::Authenticated(info) => {
                assert_eq!(info.ttl_seconds, granted, "asked {asked:?}");
                assert!(info.session.expose().starts_with("avp_sess_"));
                assert_eq!(info.session.expose().len(), 9 + 64, "256 random bits");
                let lifetime = info.expires_at.unix() - Timestamp::now().unix();
                assert!((granted as i64 - 5..=granted as i64).contains(&lifetime));
            }
            other => panic!("authenticate: {other:?}"),
        }
    }
}

#[test]
fn store_creates_then_updates_keeping_created_at() {
    let (_agent, mut conn, s) = setup("default");
    let first = stored(conn.store(&s, "API_KEY", b"one"));
    assert!(first.created);
    assert_eq!(first.version, 1);
    let second = stored(conn.store(&s, "API_KEY", b"two"));
    assert!(!second.created);
    assert_eq!(second.version, 2);
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(conn.value(&s, "API_KEY"), Ok(b"two".to_vec()));
}

#[test]
fn labels_are_kept_when_omitted_and_cleared_by_an_empty_map() {
    let (_agent, mut conn, s) = setup("default");
    let env = labels(&[("env", "prod")]);
    stored(conn.store_full(&s, "k", b"1", Some(env.clone()), ExpiryChange::Keep));
    stored(conn.store(&s, "k", b"2"));
    let Response::Retrieved(secret) = conn.retrieve(&s, "k", None) else {
        panic!()
    };
    assert_eq!(secret.labels, env);
    stored(conn.store_full(&s, "k", b"3", Some(Labels::empty()), ExpiryChange::Keep));
    let Response::Retrieved(secret) = conn.retrieve(&s, "k", None) else {
        panic!()
    };
    assert!(secret.labels.is_empty());
}

#[test]
fn expiry_is_kept_when_omitted() {
    let (_agent, mut conn, s) = setup("default");
    let at = Timestamp::now().plus_seconds(3_600);
    stored(conn.store_full(&s, "k", b"1", None, ExpiryChange::Set(at)));
    stored(conn.store(&s, "k", b"2"));
    let Response::Retrieved(secret) = conn.retrieve(&s, "k", None) else {
        panic!()
    };
    assert_eq!(secret.expires_at, Some(at));
}

#[test]
fn clear_removes_the_expiry_and_a_past_expiry_is_refused() {
    let (_agent, mut conn, s) = setup("default");
    let at = Timestamp::now().plus_seconds(3_600);
    stored(conn.store_full(&s, "k", b"1", None, ExpiryChange::Set(at)));
    let past = ExpiryChange::Set(Timestamp::from_unix(Timestamp::now().unix() - 1));
    let refused = conn.store_full(&s, "k", b"2", None, past);
    assert_eq!(code_of(&refused), Some(ErrorCode::InvalidRequest));
    let Response::Error(error) = refused else {
        panic!()
    };
    assert!(error.message.contains("in the past"), "{}", error.message);
    stored(conn.store_full(&s, "k", b"2", None, ExpiryChange::Clear));
    let Response::Retrieved(secret) = conn.retrieve(&s, "k", None) else {
        panic!()
    };
    assert_eq!((secret.version, secret.expires_at), (2, None));
}

#[test]
fn any_byte_string_round_trips_exactly() {
    let (_agent, mut conn, s) = setup("default");
    let max: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let cases: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("binary", b"\x00\xff\xfe\n\r\x00"),
        ("newline", b"ends with newline\n"),
        ("max", &max),
    ];
    for (n, v) in cases {
        stored(conn.store(&s, n, v));
        assert_eq!(conn.value(&s, n).as_deref(), Ok(v), "{n}");
    }
}

#[test]
fn values_over_the_limit_are_value_too_large_on_store_and_rotate() {
    let (_agent, mut conn, s) = setup("default");
    let big = vec![7u8; 65_537];
    assert_eq!(
        code_of(&conn.store(&s, "k", &big)),
        Some(ErrorCode::ValueTooLarge)
    );
    stored(conn.store(&s, "k", b"small"));
    assert_eq!(
        code_of(&conn.rotate(&s, "k", &big)),
        Some(ErrorCode::ValueTooLarge)
    );
    assert_eq!(conn.value(&s, "k"), Ok(b"small".to_vec()));
}

#[test]
fn too_many_labels_is_capacity_exceeded_and_long_ones_invalid() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let s = conn.session("default");
    let many: Vec<(String, String)> = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
    let raw = avp_tests::raw::store_with_labels(&s, "k", &many);
    let response = conn.call_raw(&raw);
    assert_eq!(code_of(&response), Some(ErrorCode::CapacityExceeded));
    let long = vec![("k".repeat(129), "v".to_owned())];
    let raw = avp_tests::raw::store_with_labels(&s, "k", &long);
    assert_eq!(
        code_of(&conn.call_raw(&raw)),
        Some(ErrorCode::InvalidRequest)
    );
    assert_eq!(
        conn.value(&s, "k"),
        Err(ErrorCode::SecretNotFound),
        "nothing stored"
    );
}

#[test]
fn ten_versions_are_retained_and_old_ones_retrievable() {
    let (_agent, mut conn, s) = setup("default");
    for i in 1..=12 {
        stored(conn.store(&s, "k", format!("v{i}").as_bytes()));
    }
    match conn.retrieve(&s, "k", Some(3)) {
        Response::Retrieved(secret) => {
            assert_eq!(secret.value.expose_secret(), b"v3");
            assert_eq!(secret.version, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code_of(&conn.retrieve(&s, "k", Some(2))),
        Some(ErrorCode::SecretNotFound)
    );
    match conn.history(&s, "k") {
        Response::History(h) => {
            let numbers: Vec<u32> = h.versions.iter().map(|v| v.version).collect();
            assert_eq!(numbers, (3..=12).collect::<Vec<_>>());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotate_keeps_labels_and_expiry_and_reports_versions() {
    let (_agent, mut conn, s) = setup("default");
    assert_eq!(
        code_of(&conn.rotate(&s, "missing", b"x")),
        Some(ErrorCode::SecretNotFound)
    );
    let at = Timestamp::now().plus_seconds(3_600);
    let l = labels(&[("team", "a")]);
    stored(conn.store_full(&s, "k", b"old", Some(l.clone()), ExpiryChange::Set(at)));
    match conn.rotate(&s, "k", b"new") {
        Response::Rotated(r) => assert_eq!((r.previous_version, r.new_version), (1, 2)),
        other => panic!("{other:?}"),
    }
    let Response::Retrieved(secret) = conn.retrieve(&s, "k", None) else {
        panic!()
    };
    assert_eq!(secret.value.expose_secret(), b"new");
    assert_eq!((secret.labels, secret.expires_at), (l, Some(at)));
}

#[test]
fn delete_reports_false_without_error_and_restarts_versions() {
    let (_agent, mut conn, s) = setup("default");
    stored(conn.store(&s, "k", b"1"));
    stored(conn.store(&s, "k", b"2"));
    assert!(matches!(conn.delete(&s, "k"), Response::Deleted(d) if d.deleted));
    assert!(matches!(conn.delete(&s, "k"), Response::Deleted(d) if !d.deleted));
    assert_eq!(
        code_of(&conn.retrieve(&s, "k", Some(1))),
        Some(ErrorCode::SecretNotFound)
    );
    let again = stored(conn.store(&s, "k", b"3"));
    assert!(again.created && again.version == 1);
}

#[test]
fn list_is_sorted_filtered_and_never_carries_values() {
    let (_agent, mut conn, s) = setup("default");
    for (n, env) in [("b", "prod"), ("a", "dev"), ("B", "prod"), ("a.b", "prod")] {
        stored(conn.store_full(
            &s,
            n,
            b"MARKER-value",
            Some(labels(&[("env", env)])),
            ExpiryChange::Keep,
        ));
    }
    assert_eq!(conn.names(&s), ["B", "a", "a.b", "b"]);
    match conn.list(&s, labels(&[("env", "prod")]), None, None) {
        Response::Listed(page) => {
            let got: Vec<&str> = page.secrets.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(got, ["B", "a.b", "b"]);
        }
        other => panic!("{other:?}"),
    }
    // The metadata type has no value field; check the wire bytes too.
    let raw = avp_protocol::frame::encode(&Request::List {
        session: s.clone(),
        label_filter: Labels::empty(),
        cursor: None,
        limit: None,
    })
    .unwrap();
    let answer = conn.call_raw_bytes(&raw);
    assert!(!answer.windows(6).any(|w| w == b"MARKER"));
}

#[test]
fn list_paginates_by_keyset_with_an_opaque_cursor() {
    let (_agent, mut conn, s) = setup("default");
    for i in 0..25 {
        stored(conn.store(&s, &format!("k{i:02}"), b"v"));
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let Response::Listed(page) = conn.list(&s, Labels::empty(), cursor, Some(10)) else {
            panic!()
        };
        pages += 1;
        seen.extend(page.secrets.iter().map(|m| m.name.as_str().to_owned()));
        if pages == 1 {
            // Insert before and after the cursor between pages.
            stored(conn.store(&s, "a_before", b"v"));
            stored(conn.store(&s, "k15x", b"v"));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    expected.push("k15x".into());
    expected.sort();
    assert_eq!(
        seen, expected,
        "every secret once, the one inserted after the cursor included"
    );
}

#[test]
fn list_limits_and_cursors_are_validated() {
    let (_agent, mut conn, s) = setup("default");
    for limit in [0, 1_001] {
        let r = conn.list(&s, Labels::empty(), None, Some(limit));
        assert_eq!(
            code_of(&r),
            Some(ErrorCode::InvalidRequest),
            "limit {limit}"
        );
    }
    assert!(matches!(
        conn.list(&s, Labels::empty(), None, Some(1_000)),
        Response::Listed(_)
    ));
    for raw in ["garbage", "c1.zz", ""] {
        let cursor = Some(avp_protocol::Cursor::from_wire(raw));
        let r = conn.list(&s, Labels::empty(), cursor, None);
        assert_eq!(
            code_of(&r),
            Some(ErrorCode::InvalidRequest),
            "cursor {raw:?}"
        );
    }
}

#[test]
fn expired_secrets_are_invisible() {
    let (_agent, mut conn, s) = setup("default");
    let soon = Timestamp::now().plus_seconds(1);
    stored(conn.store_full(&s, "k", b"v", None, ExpiryChange::Set(soon)));
    stored(conn.store(&s, "stays", b"v"));
    std::thread::sleep(Duration::from_millis(2_100));
    assert_eq!(conn.value(&s, "k"), Err(ErrorCode::SecretNotFound));
    assert_eq!(conn.names(&s), ["stays"]);
    assert_eq!(
        code_of(&conn.rotate(&s, "k", b"x")),
        Some(ErrorCode::SecretNotFound)
    );
    let again = stored(conn.store(&s, "k", b"new"));
    assert!(again.created && again.version == 1);
}

#[test]
fn the_secret_count_per_workspace_is_enforced() {
    let (_agent, mut conn, s) = setup("full");
    for i in 0..10_000 {
        stored(conn.store(&s, &format!("k{i:05}"), b"v"));
    }
    let over = conn.store(&s, "one_too_many", b"v");
    assert_eq!(code_of(&over), Some(ErrorCode::CapacityExceeded));
    stored(conn.store(&s, "k00000", b"an update is fine"));
    let other = conn.session("other");
    stored(conn.store(&other, "k", b"another workspace is fine"));
    assert!(matches!(conn.delete(&s, "k00001"), Response::Deleted(d) if d.deleted));
    stored(conn.store(&s, "one_too_many", b"room again"));
}

#[test]
fn discover_reports_the_enforced_limits() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    match conn.call(&Request::Discover) {
        Response::Discover(info) => {
            assert_eq!(info.limits.max_secrets_per_workspace, 10_000);
            assert_eq!(info.limits.max_secret_value_length, 65_536);
            assert_eq!(info.limits.max_labels_per_secret, 64);
            assert_eq!(info.limits.max_session_ttl_seconds, 86_400);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn workspaces_are_isolated_and_slash_is_not_hierarchy() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let team = conn.session("team");
    let job = conn.session("team/job");
    stored(conn.store(&team, "k", b"team"));
    stored(conn.store(&job, "k", b"job"));
    stored(conn.store(&job, "only_job", b"x"));
    assert_eq!(conn.value(&team, "k"), Ok(b"team".to_vec()));
    assert_eq!(conn.value(&job, "k"), Ok(b"job".to_vec()));
    assert_eq!(
        conn.value(&team, "only_job"),
        Err(ErrorCode::SecretNotFound)
    );
    assert_eq!(conn.names(&team), ["k"]);
}

#[test]
fn sessions_report_not_found_expired_and_terminated() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let unknown = avp_protocol::SessionId::generate().unwrap();
    assert_eq!(conn.value(&unknown, "k"), Err(ErrorCode::SessionNotFound));
    let Response::Authenticated(short) = conn.authenticate("default", Some(1)) else {
        panic!()
    };
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        conn.value(&short.session, "k"),
        Err(ErrorCode::SessionExpired)
    );
    let s = conn.session("default");
    assert!(matches!(conn.terminate(&s), Response::Terminated));
    assert_eq!(conn.value(&s, "k"), Err(ErrorCode::SessionTerminated));
    assert_eq!(
        code_of(&conn.terminate(&s)),
        Some(ErrorCode::SessionTerminated)
    );
}

#[test]
fn a_session_works_from_any_connection_of_the_same_user() {
    let (agent, mut conn, s) = setup("default");
    stored(conn.store(&s, "k", b"v"));
    let mut other = agent.connect();
    assert_eq!(other.value(&s, "k"), Ok(b"v".to_vec()));
}

#[test]
fn discover_needs_no_session_and_is_honest() {
    let agent = TestAgent::start();
    let mut conn = agent.connect();
    let Response::Discover(locked) = conn.call(&Request::Discover) else {
        panic!()
    };
    assert_eq!(locked.backend.status, avp_protocol::BackendStatus::Locked);
    assert_eq!(locked.conformance, "full");
    assert_eq!(locked.backend.name, "vault");
    assert!(locked.capabilities.versioning && locked.capabilities.expiration);
    assert!(locked.capabilities.rotation && locked.capabilities.audit);
    assert_eq!(locked.protocol_version, avp_protocol::PROTOCOL_VERSION);
    agent.init();
    let Response::Discover(open) = conn.call(&Request::Discover) else {
        panic!()
    };
    assert_eq!(open.backend.status, avp_protocol::BackendStatus::Available);
}
