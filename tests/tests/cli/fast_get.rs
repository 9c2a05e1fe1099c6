//! `avp get` sends Hello, Authenticate, RETRIEVE_IN_CONNECTION_SESSION and
//! TERMINATE_CONNECTION_SESSION before it reads any answer (PROTOCOL.md §3.5), so a get is
//! one round trip. A peer on a socket of our own reads all four frames before answering
//! anything: a client that waited for the `Hello` answer would never send the second.

use avp_protocol::Request;
use avp_tests::cli::{avp_at, code, text};
use avp_tests::wire::locked_peer_reading_four_frames;

#[test]
fn get_sends_its_four_requests_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let peer = locked_peer_reading_four_frames(&socket);
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
