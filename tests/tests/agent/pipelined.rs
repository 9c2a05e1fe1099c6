//! Pipelining (PROTOCOL.md §3.5, §6.17, §6.18): several frames in one write are answered in
//! order; RETRIEVE_IN_CONNECTION_SESSION and TERMINATE_CONNECTION_SESSION use the session
//! the connection's own AUTHENTICATE opened, which no other connection can use; a refused
//! request does not stop the ones after it. This is what `avp get` sends in one write.

use avp_protocol::{ErrorCode, Request, Response, frame};
use avp_tests::wire::{code_of, name, ws};
use avp_tests::{Conn, TestAgent};
use std::io::Write;

fn authenticate(workspace: &str) -> Request {
    Request::Authenticate {
        workspace: ws(workspace),
        agent_id: "avp-tests".into(),
        ttl_seconds: None,
        wait_for_unlock: false,
    }
}

fn retrieve(n: &str) -> Request {
    Request::RetrieveInConnectionSession {
        name: name(n),
        version: None,
    }
}

/// Writes every request in one `write`, then reads one answer per request.
fn pipeline(conn: &mut Conn, requests: &[Request]) -> Vec<Response> {
    let mut bytes = Vec::new();
    for request in requests {
        bytes.extend_from_slice(&frame::encode(request).unwrap());
    }
    conn.stream.write_all(&bytes).unwrap();
    requests
        .iter()
        .map(|_| {
            frame::read_message(&mut conn.stream)
                .unwrap()
                .expect("an answer")
        })
        .collect()
}

#[test]
fn a_whole_get_in_one_write_is_answered_in_order() {
    let agent = TestAgent::start_initialized();
    let mut setup = agent.connect();
    let session = setup.session("default");
    assert!(matches!(
        setup.store(&session, "K", b"value"),
        Response::Stored(_)
    ));

    let mut conn = Conn::raw(&agent.socket);
    let hello = Request::Hello {
        version: avp_protocol::PROTOCOL_VERSION,
    };
    let answers = pipeline(
        &mut conn,
        &[
            hello,
            authenticate("default"),
            retrieve("K"),
            retrieve("MISSING"),
            retrieve("K"),
            Request::TerminateConnectionSession,
            retrieve("K"),
            Request::TerminateConnectionSession,
        ],
    );
    assert!(matches!(answers[0], Response::Hello { .. }), "{answers:?}");
    let Response::Authenticated(info) = &answers[1] else {
        panic!("{answers:?}")
    };
    match &answers[2] {
        Response::Retrieved(secret) => assert_eq!(secret.value.expose_secret(), b"value"),
        other => panic!("{other:?}"),
    }
    // A refused request is answered and the connection goes on.
    assert_eq!(code_of(&answers[3]), Some(ErrorCode::SecretNotFound));
    assert!(
        matches!(answers[4], Response::Retrieved(_)),
        "{:?}",
        answers[4]
    );
    assert!(
        matches!(answers[5], Response::Terminated),
        "{:?}",
        answers[5]
    );
    // Ended: the connection has no session any more.
    assert_eq!(code_of(&answers[6]), Some(ErrorCode::SessionNotFound));
    assert_eq!(code_of(&answers[7]), Some(ErrorCode::SessionNotFound));
    // And the session itself is over, for its id too.
    let by_id = code_of(&setup.retrieve(&info.session, "K", None));
    assert!(
        matches!(
            by_id,
            Some(ErrorCode::SessionTerminated | ErrorCode::SessionNotFound)
        ),
        "{by_id:?}"
    );
}

#[test]
fn the_connection_session_is_only_this_connections() {
    let agent = TestAgent::start_initialized();
    let mut opener = agent.connect();
    let session = opener.session("default");
    assert!(matches!(
        opener.store(&session, "K", b"v"),
        Response::Stored(_)
    ));
    // Another connection of the same uid, with no AUTHENTICATE of its own, has none.
    let mut other = agent.connect();
    assert_eq!(
        code_of(&other.call(&retrieve("K"))),
        Some(ErrorCode::SessionNotFound)
    );
    assert_eq!(
        code_of(&other.call(&Request::TerminateConnectionSession)),
        Some(ErrorCode::SessionNotFound)
    );
    // A refused AUTHENTICATE (locked vault) leaves the connection without one: the read
    // after it is SESSION_NOT_FOUND, never another session's data.
    let mut locked = agent.connect();
    assert!(matches!(locked.lock(), Response::Locked));
    let answers = pipeline(&mut locked, &[authenticate("default"), retrieve("K")]);
    assert_eq!(code_of(&answers[0]), Some(ErrorCode::VaultLocked));
    assert_eq!(code_of(&answers[1]), Some(ErrorCode::SessionNotFound));
}
