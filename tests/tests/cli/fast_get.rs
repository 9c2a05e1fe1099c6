//! `avp get` sends Hello, Authenticate, RETRIEVE_IN_CONNECTION_SESSION and
//! TERMINATE_CONNECTION_SESSION before it reads any answer (PROTOCOL.md §3.5), so a get is
//! one round trip. A peer on a socket of our own reads all four frames before answering
//! anything: a client that waited for the `Hello` answer would never send the second.

use avp_protocol::{ErrorCode, ErrorResponse, PROTOCOL_VERSION, Request, Response, frame};
use avp_tests::cli::{avp_at, code, text};
use std::os::unix::net::UnixListener;
use std::time::Duration;

fn error(code: ErrorCode) -> Response {
    Response::Error(ErrorResponse::new(code, "refused"))
}

#[test]
fn get_sends_its_four_requests_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut requests = Vec::new();
        for _ in 0..4 {
            match frame::read_message::<Request>(&mut stream) {
                Ok(Some(request)) => requests.push(request),
                other => return Err(format!("after {requests:?}: {other:?}")),
            }
        }
        for answer in [
            Response::Hello {
                version: PROTOCOL_VERSION,
            },
            error(ErrorCode::VaultLocked),
            error(ErrorCode::SessionNotFound),
            error(ErrorCode::SessionNotFound),
        ] {
            frame::write_message(&mut stream, &answer).unwrap();
        }
        Ok(requests)
    });
    let out = avp_at(&socket).args(["get", "API_KEY"]).output().unwrap();
    let requests = peer
        .join()
        .unwrap()
        .expect("four requests before any answer");
    assert!(matches!(requests[0], Request::Hello { .. }), "{requests:?}");
    assert!(
        matches!(requests[1], Request::Authenticate { .. }),
        "{requests:?}"
    );
    assert!(
        matches!(&requests[2], Request::RetrieveInConnectionSession { name, version: None }
            if name.as_str() == "API_KEY"),
        "{requests:?}"
    );
    assert_eq!(requests[3], Request::TerminateConnectionSession);
    // The first refusal is the one reported: the locked vault, not the missing session.
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("avp: vault is locked (VAULT_LOCKED)"),
        "{}",
        text(&out.stderr)
    );
}
