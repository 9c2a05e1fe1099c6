//! Validation on the wire. A frame that decodes but carries a field its type rejects — an
//! invalid secret name, workspace id, session id, label set or passphrase — is answered
//! with that field's AVP code as `FrameError::Rejected`, never as a protocol error, by every
//! reader; the frame boundary is intact, so the next frame on the stream reads normally.
//!
//! The name and workspace vectors are exactly those of issue 2.

mod common;

use avp_protocol::frame::{self, HEADER_LEN};
use avp_protocol::{ErrorCode, FrameError, HistoryResult, Request, Response, Secret};
use avp_protocol::{SecretName, WorkspaceId};
use common::{framed, payload, runtime, session_text};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;

fn valid_names() -> Vec<String> {
    let mut names: Vec<String> = ["api_key", "API_KEY", "key.name", "key-name", "a"]
        .map(String::from)
        .to_vec();
    names.push("a".repeat(255));
    names
}

fn invalid_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "",
        "123key",
        "_key",
        ".key",
        "-key",
        "key with spaces",
        "key/path",
        "key\n",
        "key\r",
        "key\0",
        "clé",
        "名前",
        // Fullwidth letters look like ASCII but are not.
        "ｋｅｙ",
        "ＡＰＩ_KEY",
        "api_ｋｅｙ",
    ]
    .map(String::from)
    .to_vec();
    names.push("a".repeat(256));
    names
}

fn valid_workspaces() -> Vec<String> {
    let mut ids: Vec<String> = ["default", "my-project", "project/sub", "123"]
        .map(String::from)
        .to_vec();
    ids.push("w".repeat(255));
    ids
}

fn invalid_workspaces() -> Vec<String> {
    let mut ids: Vec<String> = ["", "/x", "a/", "a//b", "a/../b"]
        .map(String::from)
        .to_vec();
    ids.push("w".repeat(256));
    ids
}

/// What the buffer decoder and the blocking and async stream readers make of one frame.
fn decode_every_way<T: DeserializeOwned + Debug>(frame: &[u8]) -> Vec<Result<T, FrameError>> {
    let buffered = frame::decode_frame::<T>(frame).map(|decoded| {
        let (message, used) = decoded.expect("a whole frame");
        assert_eq!(used, frame.len());
        message
    });
    let blocking = frame::read_message::<T>(&mut &frame[..]).map(|m| m.expect("a frame"));
    let nonblocking = runtime()
        .block_on(frame::nonblocking::read_message::<T>(&mut &frame[..]))
        .map(|m| m.expect("a frame"));
    vec![buffered, blocking, nonblocking]
}

/// Every reader rejects `frame` with exactly `code`, and the reason does not quote the frame.
#[track_caller]
fn assert_rejected<T: DeserializeOwned + Debug>(frame: &[u8], code: ErrorCode, what: &str) {
    for result in decode_every_way::<T>(frame) {
        match result {
            Err(FrameError::Rejected(got, reason)) => {
                assert_eq!(got, code, "{what}");
                assert!(!reason.is_empty(), "{what}");
            }
            other => panic!("{what}: expected Rejected({code}), got {other:?}"),
        }
    }
}

#[track_caller]
fn assert_accepted<T: DeserializeOwned + Debug>(frame: &[u8], what: &str) -> T {
    let mut results = decode_every_way::<T>(frame);
    for result in &results {
        assert!(result.is_ok(), "{what}: {result:?}");
    }
    results
        .pop()
        .expect("three results")
        .expect("checked above")
}

fn frame_of<T: Serialize>(fields: &T) -> Vec<u8> {
    framed(&payload(fields))
}

/// Every request and response that carries a secret name, built around `name` with no
/// validation: `(what, frame, is_request)`.
fn frames_naming(name: &str) -> Vec<(&'static str, Vec<u8>, bool)> {
    let s = session_text();
    let value = b"value".to_vec();
    vec![
        // Store{session, name, value, labels: None, expires_at: None}
        ("Store", frame_of(&(4u32, &s, name, &value, 0u8, 0u8)), true),
        // Retrieve{session, name, version: None}
        ("Retrieve", frame_of(&(5u32, &s, name, 0u8)), true),
        ("Delete", frame_of(&(6u32, &s, name)), true),
        ("Rotate", frame_of(&(8u32, &s, name, &value)), true),
        ("History", frame_of(&(9u32, &s, name)), true),
        // Retrieved(Secret{name, value, version, labels: {}, created_at, updated_at, None})
        (
            "Retrieved",
            frame_of(&(5u32, name, &value, 1u32, 0u8, 0i64, 0i64, 0u8)),
            false,
        ),
        // History(HistoryResult{name, versions: []})
        ("History result", frame_of(&(9u32, name, 0u8)), false),
    ]
}

#[test]
fn name_vectors_through_the_constructor() {
    for name in valid_names() {
        assert_eq!(SecretName::new(name.clone()).expect(&name).as_str(), name);
        assert_eq!(name.parse::<SecretName>().expect(&name).as_str(), name);
    }
    for name in invalid_names() {
        let err = SecretName::new(name.clone()).expect_err(&name);
        assert_eq!(err.code, ErrorCode::InvalidName, "{name:?}");
    }
}

#[test]
fn workspace_vectors_through_the_constructor() {
    for id in valid_workspaces() {
        assert_eq!(WorkspaceId::new(id.clone()).expect(&id).as_str(), id);
    }
    for id in invalid_workspaces() {
        let err = WorkspaceId::new(id.clone()).expect_err(&id);
        assert_eq!(err.code, ErrorCode::InvalidWorkspace, "{id:?}");
    }
}

#[test]
fn invalid_names_on_the_wire_are_rejected_with_invalid_name() {
    for name in invalid_names() {
        for (what, frame, is_request) in frames_naming(&name) {
            let what = format!("{what} naming {name:?}");
            if is_request {
                assert_rejected::<Request>(&frame, ErrorCode::InvalidName, &what);
            } else {
                assert_rejected::<Response>(&frame, ErrorCode::InvalidName, &what);
            }
        }
    }
}

#[test]
fn valid_names_on_the_wire_are_accepted() {
    for name in valid_names() {
        for (what, frame, is_request) in frames_naming(&name) {
            let what = format!("{what} naming {name:?}");
            let decoded = if is_request {
                match assert_accepted::<Request>(&frame, &what) {
                    Request::Store { name, .. }
                    | Request::Retrieve { name, .. }
                    | Request::Delete { name, .. }
                    | Request::Rotate { name, .. }
                    | Request::History { name, .. } => name,
                    other => panic!("{what}: decoded as {}", other.operation()),
                }
            } else {
                match assert_accepted::<Response>(&frame, &what) {
                    Response::Retrieved(Secret { name, .. })
                    | Response::History(HistoryResult { name, .. }) => name,
                    other => panic!("{what}: decoded as {}", other.kind()),
                }
            };
            assert_eq!(decoded.as_str(), name, "{what}");
        }
    }
}

#[test]
fn workspaces_on_the_wire() {
    for id in invalid_workspaces() {
        // Authenticate{workspace, agent_id, ttl_seconds: None, wait_for_unlock: false}
        let frame = frame_of(&(2u32, &id, "agent", 0u8, false));
        assert_rejected::<Request>(&frame, ErrorCode::InvalidWorkspace, &id);
        // Authenticated(SessionInfo{session, workspace, expires_at, ttl_seconds})
        let frame = frame_of(&(2u32, session_text(), &id, 0i64, 60u64));
        assert_rejected::<Response>(&frame, ErrorCode::InvalidWorkspace, &id);
    }
    for id in valid_workspaces() {
        let frame = frame_of(&(2u32, &id, "agent", 0u8, false));
        match assert_accepted::<Request>(&frame, &id) {
            Request::Authenticate { workspace, .. } => assert_eq!(workspace.as_str(), id),
            other => panic!("{id}: decoded as {}", other.operation()),
        }
    }
}

#[test]
fn malformed_session_ids_on_the_wire_are_session_not_found() {
    let good = session_text();
    let bad = [
        String::new(),
        "avp_sess_".to_owned(),
        "avp_sess_xyz".to_owned(),
        good.to_uppercase(),
        format!("{good}0"),
        good[..good.len() - 1].to_owned(),
        good.replacen("avp_sess_", "avp_sesz_", 1),
    ];
    for session in bad {
        let what = format!("session {session:?}");
        assert_rejected::<Request>(
            &frame_of(&(3u32, &session)),
            ErrorCode::SessionNotFound,
            &what,
        );
        assert_rejected::<Request>(
            &frame_of(&(6u32, &session, "api_key")),
            ErrorCode::SessionNotFound,
            &what,
        );
    }
    assert_accepted::<Request>(&frame_of(&(3u32, &good)), "a good session id");
}

#[test]
fn labels_over_the_limits_on_the_wire() {
    let list = |labels: &BTreeMap<String, String>| {
        // List{session, label_filter, cursor: None, limit: None}
        frame_of(&(7u32, session_text(), labels, 0u8, 0u8))
    };
    let too_many: BTreeMap<String, String> =
        (0..65).map(|i| (format!("k{i}"), String::new())).collect();
    assert_rejected::<Request>(&list(&too_many), ErrorCode::CapacityExceeded, "65 labels");
    let cases = [
        (String::new(), "v".to_owned()),
        ("k".repeat(129), "v".to_owned()),
        ("k".to_owned(), "v".repeat(1025)),
    ];
    for (key, value) in cases {
        let labels = BTreeMap::from([(key, value)]);
        assert_rejected::<Request>(&list(&labels), ErrorCode::InvalidRequest, "a bad label");
    }
    let largest = common::largest_labels();
    assert_accepted::<Request>(&list(largest.as_map()), "64 labels at the size limits");
}

#[test]
fn a_passphrase_that_is_not_utf8_is_an_invalid_request() {
    // Unlock{passphrase}
    let frame = frame_of(&(11u32, vec![0x66u8, 0xFF, 0x6F]));
    assert_rejected::<Request>(&frame, ErrorCode::InvalidRequest, "non-UTF-8 passphrase");
    // ChangePassphrase{old, new}
    let frame = frame_of(&(14u32, b"old".to_vec(), vec![0xC3u8, 0x28]));
    assert_rejected::<Request>(&frame, ErrorCode::InvalidRequest, "non-UTF-8 passphrase");
}

#[test]
fn a_rejected_frame_leaves_the_stream_usable() {
    let rejected = frame_of(&(5u32, session_text(), "123key", 0u8));
    let hello = frame::encode(&Request::Hello { version: 1 }).unwrap();
    let stream = [&rejected[..], &hello[..]].concat();

    // Blocking.
    let mut reader = &stream[..];
    assert!(matches!(
        frame::read_message::<Request>(&mut reader),
        Err(FrameError::Rejected(ErrorCode::InvalidName, _))
    ));
    assert_eq!(
        frame::read_message::<Request>(&mut reader).unwrap(),
        Some(Request::Hello { version: 1 })
    );
    assert!(
        frame::read_message::<Request>(&mut reader)
            .unwrap()
            .is_none()
    );

    // Async.
    runtime().block_on(async {
        let mut reader = &stream[..];
        let first = frame::nonblocking::read_message::<Request>(&mut reader).await;
        assert!(matches!(
            first,
            Err(FrameError::Rejected(ErrorCode::InvalidName, _))
        ));
        let second = frame::nonblocking::read_message::<Request>(&mut reader).await;
        assert_eq!(second.unwrap(), Some(Request::Hello { version: 1 }));
    });

    // A buffer: `check` gives the length of the rejected frame, to skip it.
    assert!(matches!(
        frame::decode_frame::<Request>(&stream),
        Err(FrameError::Rejected(ErrorCode::InvalidName, _))
    ));
    let skip = frame::check(&stream).unwrap().unwrap();
    assert_eq!(skip, rejected.len());
    let (next, used) = frame::decode_frame::<Request>(&stream[skip..])
        .unwrap()
        .unwrap();
    assert_eq!(next, Request::Hello { version: 1 });
    assert_eq!(used, hello.len());
}

#[test]
fn rejections_never_quote_the_request() {
    const MARKER: &str = "MARKERq9";
    // An invalid name that contains the marker, next to a value that is the marker.
    let name = format!("1{MARKER}");
    let frame = frame_of(&(4u32, session_text(), &name, MARKER.as_bytes(), 0u8, 0u8));
    for result in decode_every_way::<Request>(&frame) {
        let err = result.expect_err("an invalid name");
        assert!(matches!(
            err,
            FrameError::Rejected(ErrorCode::InvalidName, _)
        ));
        assert!(!err.to_string().contains(MARKER), "{err}");
        assert!(!format!("{err:?}").contains(MARKER), "{err:?}");
    }
    let err = SecretName::new(name).unwrap_err();
    assert!(!err.to_string().contains(MARKER));
}

#[test]
fn unknown_variants_are_a_protocol_error_not_a_rejection() {
    // Validation errors map to their code; anything structural is `Malformed`.
    let frame = framed(&[99]);
    for result in decode_every_way::<Request>(&frame) {
        assert!(matches!(result, Err(FrameError::Malformed)), "{result:?}");
    }
    assert!(frame.len() > HEADER_LEN);
}
