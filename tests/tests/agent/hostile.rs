//! Bad input gets a clear error code, closes at most its own connection, and costs the
//! agent nothing: after each case a well-behaved client is served and no data is lost.

use avp_protocol::{ErrorCode, PROTOCOL_VERSION, Passphrase, Request, Response};
use avp_tests::raw::RawRequest;
use avp_tests::wire::code_of;
use avp_tests::{Conn, TestAgent};

/// An agent with one secret stored, and the session that stored it.
fn agent_with_a_secret() -> (TestAgent, avp_protocol::SessionId) {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let session = conn.session("default");
    assert!(matches!(
        conn.store(&session, "KEEP", b"kept"),
        Response::Stored(_)
    ));
    (agent, session)
}

/// The agent still serves a fresh client and still holds the secret.
fn still_serving(agent: &TestAgent, session: &avp_protocol::SessionId) {
    let mut conn = agent.connect();
    assert_eq!(conn.value(session, "KEEP"), Ok(b"kept".to_vec()));
}

fn frame_with_len(len: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

#[test]
fn an_oversized_length_prefix_is_a_protocol_error() {
    let (agent, session) = agent_with_a_secret();
    for len in [u32::MAX, (1 << 20) + 1] {
        let mut conn = agent.connect();
        let answer = conn.send_raw(&frame_with_len(len, b"xx"));
        assert_eq!(
            answer.as_ref().and_then(code_of),
            Some(ErrorCode::ProtocolError),
            "len {len}"
        );
        assert!(
            conn.is_closed(),
            "the connection is closed after a bad frame"
        );
    }
    still_serving(&agent, &session);
}

#[test]
fn a_truncated_frame_closes_only_its_connection() {
    let (agent, session) = agent_with_a_secret();
    let mut conn = agent.connect();
    let mut whole = RawRequest::Discover.frame();
    whole.truncate(whole.len() - 1);
    whole[3] += 5; // claims more than will ever come
    use std::io::Write;
    conn.stream.write_all(&whole).unwrap();
    conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(conn.is_closed());
    still_serving(&agent, &session);
}

#[test]
fn garbage_and_huge_claims_are_protocol_errors() {
    let (agent, session) = agent_with_a_secret();
    // A Store whose value claims 2^40 bytes inside a small frame.
    let mut claim = vec![4u8]; // variant Store
    claim.push(73); // session: string of 73 bytes
    claim.extend_from_slice(session.expose().as_bytes());
    claim.extend_from_slice(&[1, b'k']); // name "k"
    claim.push(253); // u64 varint marker
    claim.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let cases: Vec<Vec<u8>> = vec![
        frame_with_len(5, &[0xff; 5]),
        frame_with_len(claim.len() as u32, &claim),
        frame_with_len(0, b""),
    ];
    for bytes in cases {
        let mut conn = agent.connect();
        let answer = conn.send_raw(&bytes);
        assert_eq!(
            answer.as_ref().and_then(code_of),
            Some(ErrorCode::ProtocolError)
        );
        assert!(conn.is_closed());
    }
    still_serving(&agent, &session);
}

#[test]
fn a_wrong_protocol_version_names_both_versions() {
    let agent = TestAgent::start();
    let mut conn = Conn::raw(&agent.socket);
    let answer = conn.send_raw(&RawRequest::Hello { version: 999 }.frame());
    match answer {
        Some(Response::Error(e)) => {
            assert_eq!(e.code, ErrorCode::VersionMismatch);
            assert!(e.message.contains("999"), "{}", e.message);
            assert!(
                e.message.contains(&PROTOCOL_VERSION.to_string()),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(conn.is_closed());
}

#[test]
fn a_request_before_hello_is_refused() {
    let agent = TestAgent::start();
    let mut conn = Conn::raw(&agent.socket);
    let answer = conn.send_raw(&RawRequest::Discover.frame());
    assert_eq!(
        answer.as_ref().and_then(code_of),
        Some(ErrorCode::ProtocolError)
    );
    assert!(conn.is_closed());
    let mut again = agent.connect();
    assert_eq!(
        code_of(&again.call(&Request::Hello {
            version: PROTOCOL_VERSION
        })),
        Some(ErrorCode::ProtocolError)
    );
    assert!(
        matches!(again.call(&Request::Discover), Response::Discover(_)),
        "the connection goes on"
    );
}

#[test]
fn invalid_names_and_workspaces_are_rejected_and_the_connection_goes_on() {
    let (agent, session) = agent_with_a_secret();
    let mut conn = agent.connect();
    for bad in [
        "",
        "1abc",
        "_x",
        "a b",
        "a/b",
        "k\n",
        "clé",
        &"a".repeat(256),
    ] {
        let request = RawRequest::Retrieve {
            session: session.expose().to_owned(),
            name: bad.to_owned(),
            version: None,
        };
        assert_eq!(
            code_of(&conn.call_raw(&request)),
            Some(ErrorCode::InvalidName),
            "{bad:?}"
        );
    }
    for bad in ["", "/x", "a/", "a//b", "a/../b", "..", &"w".repeat(256)] {
        let request = RawRequest::Authenticate {
            workspace: bad.to_owned(),
            agent_id: "t".into(),
            ttl_seconds: None,
            wait_for_unlock: false,
        };
        assert_eq!(
            code_of(&conn.call_raw(&request)),
            Some(ErrorCode::InvalidWorkspace),
            "{bad:?}"
        );
    }
    let malformed_session = RawRequest::Retrieve {
        session: "avp_sess_nope".into(),
        name: "KEEP".into(),
        version: None,
    };
    assert_eq!(
        code_of(&conn.call_raw(&malformed_session)),
        Some(ErrorCode::SessionNotFound)
    );
    assert_eq!(conn.value(&session, "KEEP"), Ok(b"kept".to_vec()));
}

#[test]
fn an_overlong_agent_id_is_an_invalid_request() {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect();
    let request = RawRequest::Authenticate {
        workspace: "default".into(),
        agent_id: "x".repeat(256),
        ttl_seconds: None,
        wait_for_unlock: false,
    };
    assert_eq!(
        code_of(&conn.call_raw(&request)),
        Some(ErrorCode::InvalidRequest)
    );
}

#[test]
fn operations_before_init_and_while_locked_say_so() {
    let agent = TestAgent::start();
    let mut conn = agent.connect();
    let before = conn.authenticate("default", None);
    assert_eq!(code_of(&before), Some(ErrorCode::VaultNotInitialized));
    let unlock = conn.call(&Request::Unlock {
        passphrase: Passphrase::new("x"),
    });
    assert_eq!(code_of(&unlock), Some(ErrorCode::VaultNotInitialized));
    agent.init();
    let session = conn.session("default");
    assert!(matches!(conn.lock(), Response::Locked));
    assert_eq!(conn.value(&session, "k"), Err(ErrorCode::VaultLocked));
    assert_eq!(
        code_of(&conn.authenticate("default", None)),
        Some(ErrorCode::VaultLocked)
    );
    let second_init = conn.call(&Request::Init {
        passphrase: Passphrase::new("other"),
        work_factor: Some(10),
    });
    assert_eq!(
        code_of(&second_init),
        Some(ErrorCode::InvalidRequest),
        "one vault per directory"
    );
}

#[test]
fn init_validates_its_work_factor_and_passphrase() {
    let agent = TestAgent::start();
    let mut conn = agent.connect();
    for work_factor in [9, 23] {
        let r = conn.call(&Request::Init {
            passphrase: Passphrase::new("p"),
            work_factor: Some(work_factor),
        });
        assert_eq!(
            code_of(&r),
            Some(ErrorCode::InvalidRequest),
            "work factor {work_factor}"
        );
    }
    let r = conn.call(&Request::Init {
        passphrase: Passphrase::new(""),
        work_factor: Some(10),
    });
    assert_eq!(code_of(&r), Some(ErrorCode::InvalidRequest));
}

#[test]
fn a_wrong_passphrase_is_authentication_failed_and_loses_nothing() {
    let (agent, _) = agent_with_a_secret();
    let mut conn = agent.connect();
    assert!(matches!(conn.lock(), Response::Locked));
    let wrong = conn.call(&Request::Unlock {
        passphrase: Passphrase::new("wrong"),
    });
    match wrong {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::AuthenticationFailed);
            assert!(
                !e.message.contains("wrong\""),
                "no passphrase in the message"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(agent.unlock(), Response::Unlocked));
    let session = conn.session("default");
    assert_eq!(conn.value(&session, "KEEP"), Ok(b"kept".to_vec()));
}

#[test]
fn a_slow_loris_frame_is_cut_off_by_the_frame_timeout() {
    let agent = TestAgent::start_with(avp_tests::AgentOptions {
        args: vec!["--frame-timeout".into(), "1s".into()],
        ..Default::default()
    });
    let mut conn = agent.connect();
    use std::io::Write;
    conn.stream.write_all(&[0, 0]).unwrap(); // half a header, then nothing
    let started = std::time::Instant::now();
    assert!(conn.is_closed());
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < std::time::Duration::from_secs(5),
        "closed too late: {waited:?}"
    );
    let mut fresh = agent.connect();
    assert!(matches!(
        fresh.call(&Request::Discover),
        Response::Discover(_)
    ));
}
