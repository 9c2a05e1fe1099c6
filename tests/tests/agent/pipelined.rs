//! Pipelining (PROTOCOL.md §3.5, §6.17, §6.18): several frames in one write are answered in
//! order; RETRIEVE_IN_CONNECTION_SESSION and TERMINATE_CONNECTION_SESSION use the session
//! the connection's own AUTHENTICATE opened, which no other connection can use; a refused
//! request does not stop the ones after it. This is what `avp get` sends in one write.
//! The answers to requests that arrived together leave together, in one write; a batch may
//! hold frames of any size, split anywhere.

use avp_protocol::{ErrorCode, ExpiryChange, Request, Response, SessionId, frame};
use avp_tests::wire::{code_of, name, store_request, ws};
use avp_tests::{Conn, TestAgent};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

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

fn store(session: &SessionId, n: &str, value: &[u8]) -> Request {
    store_request(session, n, value, None, ExpiryChange::Keep)
}

/// Bytes waiting in `conn`'s receive queue, once the first of them has arrived.
fn bytes_at_first_wake(conn: &Conn) -> usize {
    let mut fds = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(10_000u16)).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    recv(conn.stream.as_raw_fd(), &mut buf, flags).unwrap()
}

#[test]
fn answers_to_requests_sent_together_arrive_together() {
    let agent = TestAgent::start_initialized();
    let mut setup = agent.connect();
    let session = setup.session("default");
    // A durable STORE (an fsync) between fast requests: answering each request as soon as
    // it was done would let the first answers reach the client long before the STORE's.
    let batch = [
        authenticate("default"),
        store(&session, "K", b"v1"),
        retrieve("MISSING"),
        Request::TerminateConnectionSession,
    ];
    let mut conn = agent.connect();
    let mut bytes = Vec::new();
    for request in &batch {
        bytes.extend_from_slice(&frame::encode(request).unwrap());
    }
    conn.stream.write_all(&bytes).unwrap();
    let arrived = bytes_at_first_wake(&conn);
    let answers: Vec<Response> = batch
        .iter()
        .map(|_| frame::read_message(&mut conn.stream).unwrap().unwrap())
        .collect();
    let total: usize = answers
        .iter()
        .map(|a| frame::encode(a).unwrap().len())
        .sum();
    assert!(matches!(answers[1], Response::Stored(_)), "{answers:?}");
    assert_eq!(
        arrived, total,
        "the client was woken with {arrived} of the batch's {total} answer bytes"
    );
}

#[test]
fn a_batch_of_any_frames_split_anywhere_is_answered_in_order() {
    let agent = TestAgent::start_initialized();
    let mut setup = agent.connect();
    let session = setup.session("default");
    // Sizes around the receive buffer's (4 KiB) and past it, up to one that makes it grow
    // past 16 KiB (and draw on the frame budget), to the largest value there is.
    let sizes = [1usize, 4000, 4096, 5000, 20_000, 65_536, 3];
    let mut requests = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let value = vec![b'a' + u8::try_from(i).unwrap(); *size];
        requests.push(store(&session, &format!("S{i}"), &value));
        requests.push(Request::Retrieve {
            session: session.clone(),
            name: name(&format!("S{i}")),
            version: None,
        });
    }
    let mut bytes = Vec::new();
    for request in &requests {
        bytes.extend_from_slice(&frame::encode(request).unwrap());
    }
    // Once in one write, and once in pieces of awkward sizes (a prefix cut in two, a frame
    // ending mid-piece), with pauses between so they arrive apart.
    for pieces in [
        vec![bytes.len()],
        vec![1, 2, 3, 4093, 7, 65_536, 1, 100_000],
    ] {
        let mut conn = agent.connect();
        let mut writer = conn.stream.try_clone().unwrap();
        let sent = bytes.clone();
        let sender = std::thread::spawn(move || {
            let mut at = 0;
            for piece in pieces.iter().cycle() {
                if at == sent.len() {
                    break;
                }
                let end = (at + piece).min(sent.len());
                writer.write_all(&sent[at..end]).unwrap();
                at = end;
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        for (i, size) in sizes.iter().enumerate() {
            let stored: Response = frame::read_message(&mut conn.stream).unwrap().unwrap();
            assert!(matches!(stored, Response::Stored(_)), "{stored:?}");
            let retrieved: Response = frame::read_message(&mut conn.stream).unwrap().unwrap();
            let Response::Retrieved(secret) = retrieved else {
                panic!("{retrieved:?}")
            };
            let expected = vec![b'a' + u8::try_from(i).unwrap(); *size];
            assert!(secret.value.expose_secret() == expected.as_slice(), "S{i}");
        }
        sender.join().unwrap();
    }
}
