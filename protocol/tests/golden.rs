//! Frozen wire formats: every request and response example of `protocol/PROTOCOL.md`, encoded
//! by the real encoder and compared byte for byte with its golden file in `tests/golden/`.
//!
//! A failure here means a change altered what goes on the wire, which breaks every client
//! written from the specification. If the change is deliberate (and `PROTOCOL_VERSION` was
//! bumped where an older peer could misread it), regenerate the files with
//! `AVP_BLESS=1 cargo test -p avp-protocol --test golden`, then paste the new hex into
//! PROTOCOL.md: the test also checks that each golden hex appears there verbatim, so the
//! specification cannot drift from the code.

mod common;

use avp_protocol::frame;
use avp_protocol::*;
use common::{REQUEST_VARIANTS, RESPONSE_VARIANTS, request_variant, response_variant};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One example: its golden file's stem, a line saying what it is, and its whole frame.
struct Example {
    file: &'static str,
    what: &'static str,
    frame: Vec<u8>,
}

fn frame_of<T: Serialize>(message: &T) -> Vec<u8> {
    frame::encode(message)
        .expect("the example encodes")
        .to_vec()
}

fn name(text: &str) -> SecretName {
    SecretName::new(text).expect("valid name")
}

/// A fixed session id, so the examples are the same on every run.
fn session() -> SessionId {
    SessionId::parse(format!("avp_sess_{}", "0123456789abcdef".repeat(4))).expect("well-formed")
}

fn env_prod() -> Labels {
    Labels::new(BTreeMap::from([("env".to_owned(), "prod".to_owned())])).expect("valid")
}

/// A STORE of `db.password` with these labels and expiry change (PROTOCOL.md §6.5).
fn store(labels: Option<Labels>, expires_at: ExpiryChange) -> Vec<u8> {
    frame_of(&Request::Store {
        session: session(),
        name: name("db.password"),
        value: SecretValue::from_slice(b"hunter2"),
        labels,
        expires_at,
    })
}

fn requests() -> Vec<(Example, Option<Request>)> {
    let typed = |file, what, request: Request| {
        let frame = frame_of(&request);
        (Example { file, what, frame }, Some(request))
    };
    let raw = |file, what, frame| (Example { file, what, frame }, None);
    vec![
        typed(
            "request-hello",
            "Request::Hello, protocol version 2",
            Request::Hello {
                version: PROTOCOL_VERSION,
            },
        ),
        typed("request-discover", "Request::Discover", Request::Discover),
        typed(
            "request-authenticate",
            "Request::Authenticate, workspace team/job, agent id ci-runner, TTL 60 s, wait for unlock",
            Request::Authenticate {
                workspace: WorkspaceId::new("team/job").expect("valid"),
                agent_id: "ci-runner".into(),
                ttl_seconds: Some(60),
                wait_for_unlock: true,
            },
        ),
        typed(
            "request-authenticate-default-ttl",
            "Request::Authenticate, workspace default, empty agent id, default TTL, no wait",
            Request::Authenticate {
                workspace: WorkspaceId::default_workspace(),
                agent_id: String::new(),
                ttl_seconds: None,
                wait_for_unlock: false,
            },
        ),
        typed(
            "request-terminate",
            "Request::Terminate",
            Request::Terminate { session: session() },
        ),
        raw(
            "request-store-set",
            "Request::Store, value hunter2, labels {env: prod}, expires_at Set(2030-03-17T17:46:40Z)",
            store(
                Some(env_prod()),
                ExpiryChange::Set(Timestamp::from_unix(1_900_000_000)),
            ),
        ),
        raw(
            "request-store-keep",
            "Request::Store, value hunter2, labels kept (None), expires_at Keep",
            store(None, ExpiryChange::Keep),
        ),
        raw(
            "request-store-clear",
            "Request::Store, value hunter2, labels cleared (empty map), expires_at Clear",
            store(Some(Labels::empty()), ExpiryChange::Clear),
        ),
        typed(
            "request-retrieve",
            "Request::Retrieve, current version",
            Request::Retrieve {
                session: session(),
                name: name("db.password"),
                version: None,
            },
        ),
        typed(
            "request-retrieve-version",
            "Request::Retrieve, version 3",
            Request::Retrieve {
                session: session(),
                name: name("db.password"),
                version: Some(3),
            },
        ),
        typed(
            "request-delete",
            "Request::Delete",
            Request::Delete {
                session: session(),
                name: name("db.password"),
            },
        ),
        typed(
            "request-list",
            "Request::List, first page, no filter, default limit",
            Request::List {
                session: session(),
                label_filter: Labels::empty(),
                cursor: None,
                limit: None,
            },
        ),
        typed(
            "request-list-next",
            "Request::List, filter {env: prod}, after api_key, limit 2",
            Request::List {
                session: session(),
                label_filter: env_prod(),
                cursor: Some(Cursor::after(&name("api_key"))),
                limit: Some(2),
            },
        ),
        typed(
            "request-rotate",
            "Request::Rotate, new value s3cret",
            Request::Rotate {
                session: session(),
                name: name("db.password"),
                value: SecretValue::from_slice(b"s3cret"),
            },
        ),
        typed(
            "request-history",
            "Request::History",
            Request::History {
                session: session(),
                name: name("db.password"),
            },
        ),
        typed(
            "request-init",
            "Request::Init, passphrase pass, work factor 10",
            Request::Init {
                passphrase: Passphrase::new("pass"),
                work_factor: Some(10),
            },
        ),
        typed(
            "request-unlock",
            "Request::Unlock, passphrase pass",
            Request::Unlock {
                passphrase: Passphrase::new("pass"),
            },
        ),
        typed("request-lock", "Request::Lock", Request::Lock),
        typed("request-status", "Request::Status", Request::Status),
        typed(
            "request-change-passphrase",
            "Request::ChangePassphrase, pass to word",
            Request::ChangePassphrase {
                old: Passphrase::new("pass"),
                new: Passphrase::new("word"),
            },
        ),
        typed(
            "request-workspaces",
            "Request::Workspaces",
            Request::Workspaces,
        ),
        typed(
            "request-retrieve-in-connection-session",
            "Request::RetrieveInConnectionSession, db.password, current version",
            Request::RetrieveInConnectionSession {
                name: name("db.password"),
                version: None,
            },
        ),
        typed(
            "request-terminate-connection-session",
            "Request::TerminateConnectionSession",
            Request::TerminateConnectionSession,
        ),
    ]
}

fn responses() -> Vec<(Example, Response)> {
    let example = |file, what, response: Response| {
        let frame = frame_of(&response);
        (Example { file, what, frame }, response)
    };
    let t0 = Timestamp::from_unix(1_700_000_000);
    let t1 = Timestamp::from_unix(1_700_000_100);
    vec![
        example(
            "response-hello",
            "Response::Hello, protocol version 2",
            Response::Hello {
                version: PROTOCOL_VERSION,
            },
        ),
        example(
            "response-discover",
            "Response::Discover, vault backend, unlocked",
            Response::Discover(DiscoverInfo {
                protocol_version: PROTOCOL_VERSION,
                agent_version: "0.1.0".into(),
                conformance: CONFORMANCE.into(),
                backend: BackendInfo {
                    name: "vault".into(),
                    status: BackendStatus::Available,
                    degraded_since: None,
                },
                capabilities: Capabilities {
                    versioning: true,
                    expiration: true,
                    rotation: true,
                    audit: true,
                },
                auth_methods: vec!["peer_credentials".into()],
                limits: Limits::AVP,
            }),
        ),
        example(
            "response-discover-degraded",
            "Response::Discover, redis backend unreachable, reads served from last-known state",
            Response::Discover(DiscoverInfo {
                protocol_version: PROTOCOL_VERSION,
                agent_version: "0.1.0".into(),
                conformance: CONFORMANCE.into(),
                backend: BackendInfo {
                    name: "redis".into(),
                    status: BackendStatus::Degraded,
                    degraded_since: Some(t0),
                },
                capabilities: Capabilities {
                    versioning: true,
                    expiration: true,
                    rotation: true,
                    audit: true,
                },
                auth_methods: vec!["peer_credentials".into()],
                limits: Limits::AVP,
            }),
        ),
        example(
            "response-authenticated",
            "Response::Authenticated, workspace team/job, TTL 60 s",
            Response::Authenticated(SessionInfo {
                session: session(),
                workspace: WorkspaceId::new("team/job").expect("valid"),
                expires_at: Timestamp::from_unix(1_700_000_060),
                ttl_seconds: 60,
            }),
        ),
        example(
            "response-terminated",
            "Response::Terminated",
            Response::Terminated,
        ),
        example(
            "response-stored",
            "Response::Stored, an update to version 2",
            Response::Stored(StoreResult {
                created: false,
                version: 2,
                created_at: t0,
                updated_at: t1,
            }),
        ),
        example(
            "response-retrieved",
            "Response::Retrieved, version 2 of db.password, labels {env: prod}, no expiry",
            Response::Retrieved(Secret {
                name: name("db.password"),
                value: SecretValue::from_slice(b"hunter2"),
                version: 2,
                labels: env_prod(),
                created_at: t0,
                updated_at: t1,
                expires_at: None,
            }),
        ),
        example(
            "response-deleted",
            "Response::Deleted, deleted",
            Response::Deleted(DeleteResult { deleted: true }),
        ),
        example(
            "response-listed",
            "Response::Listed, two secrets and a cursor for the next page",
            Response::Listed(ListPage {
                secrets: vec![
                    SecretMeta {
                        name: name("api_key"),
                        version: 1,
                        labels: Labels::empty(),
                        created_at: t0,
                        updated_at: t0,
                        expires_at: None,
                    },
                    SecretMeta {
                        name: name("db.password"),
                        version: 2,
                        labels: env_prod(),
                        created_at: t0,
                        updated_at: t1,
                        expires_at: Some(Timestamp::from_unix(1_900_000_000)),
                    },
                ],
                next_cursor: Some(Cursor::after(&name("db.password"))),
            }),
        ),
        example(
            "response-rotated",
            "Response::Rotated, version 2 to 3",
            Response::Rotated(RotateResult {
                previous_version: 2,
                new_version: 3,
                updated_at: Timestamp::from_unix(1_700_000_200),
            }),
        ),
        example(
            "response-history",
            "Response::History, versions 1 and 2",
            Response::History(HistoryResult {
                name: name("db.password"),
                versions: vec![
                    VersionInfo {
                        version: 1,
                        created_at: t0,
                    },
                    VersionInfo {
                        version: 2,
                        created_at: t1,
                    },
                ],
            }),
        ),
        example(
            "response-initialized",
            "Response::Initialized",
            Response::Initialized,
        ),
        example(
            "response-unlocked",
            "Response::Unlocked",
            Response::Unlocked,
        ),
        example("response-locked", "Response::Locked", Response::Locked),
        example(
            "response-status",
            "Response::Status, unlocked",
            Response::Status(common::examples::unlocked_status()),
        ),
        example(
            "response-passphrase-changed",
            "Response::PassphraseChanged",
            Response::PassphraseChanged,
        ),
        example(
            "response-error",
            "Response::Error, SECRET_NOT_FOUND",
            Response::Error(ErrorResponse::new(
                ErrorCode::SecretNotFound,
                "no such secret",
            )),
        ),
        example(
            "response-error-version-mismatch",
            "Response::Error, VERSION_MISMATCH answering a Hello of version 1",
            Response::Error(ErrorResponse::new(
                ErrorCode::VersionMismatch,
                "client speaks protocol version 1, this agent speaks 2: use an avp client and \
                 agent from the same release",
            )),
        ),
        example(
            "response-workspaces",
            "Response::Workspaces, default with 3 secrets and team/job with 1",
            Response::Workspaces(WorkspacesResult {
                workspaces: vec![
                    WorkspaceCount {
                        workspace: WorkspaceId::default_workspace(),
                        secrets: 3,
                    },
                    WorkspaceCount {
                        workspace: WorkspaceId::new("team/job").expect("valid"),
                        secrets: 1,
                    },
                ],
                truncated: false,
            }),
        ),
    ]
}

fn every_example() -> Vec<Example> {
    let requests = requests().into_iter().map(|(example, _)| example);
    let responses = responses().into_iter().map(|(example, _)| example);
    requests.chain(responses).collect()
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The hex body of a golden file and of its PROTOCOL.md block: 16 bytes a line.
fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn golden_text(example: &Example) -> String {
    format!(
        "# {} ({} bytes: 4-byte length, then the payload)\n{}\n",
        example.what,
        example.frame.len(),
        hex_lines(&example.frame)
    )
}

/// The bytes of a golden file: its non-comment lines, as hex.
fn parse_golden(text: &str) -> Vec<u8> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|pair| u8::from_str_radix(pair, 16).expect("golden files hold hex pairs"))
        .collect()
}

const BLESS_HINT: &str = "if the wire change is deliberate, regenerate with \
     `AVP_BLESS=1 cargo test -p avp-protocol --test golden` and update PROTOCOL.md";

#[test]
fn every_example_matches_its_golden_file() {
    let bless = std::env::var_os("AVP_BLESS").is_some();
    let dir = golden_dir();
    let mut failures = Vec::new();
    for example in every_example() {
        let path = dir.join(format!("{}.hex", example.file));
        if bless {
            std::fs::create_dir_all(&dir).expect("create tests/golden");
            std::fs::write(&path, golden_text(&example)).expect("write golden file");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) if parse_golden(&text) == example.frame => {}
            Ok(text) => failures.push(format!(
                "{}: the encoder now writes\n{}\nbut the golden file holds\n{}",
                example.file,
                hex_lines(&example.frame),
                hex_lines(&parse_golden(&text))
            )),
            Err(err) => failures.push(format!("{}: cannot read {path:?}: {err}", example.file)),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{BLESS_HINT}",
        failures.join("\n\n")
    );
}

/// No golden file is left over from an example that no longer exists.
#[test]
fn every_golden_file_has_an_example() {
    let known: BTreeSet<String> = every_example()
        .iter()
        .map(|e| format!("{}.hex", e.file))
        .collect();
    for entry in std::fs::read_dir(golden_dir()).expect("tests/golden exists") {
        let file = entry.expect("directory entry").file_name();
        let file = file.to_string_lossy();
        assert!(
            known.contains(file.as_ref()),
            "tests/golden/{file} has no example: remove it or add the example"
        );
    }
}

/// The specification shows exactly the golden bytes of every example.
#[test]
fn protocol_md_shows_every_golden_frame() {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("PROTOCOL.md");
    let spec = std::fs::read_to_string(&spec_path).expect("protocol/PROTOCOL.md exists");
    let missing: Vec<_> = every_example()
        .iter()
        .filter(|example| !spec.contains(&hex_lines(&example.frame)))
        .map(|example| example.file)
        .collect();
    assert!(
        missing.is_empty(),
        "PROTOCOL.md does not show the current bytes of {missing:?}: copy them from \
         tests/golden/<name>.hex (the lines after the comment)"
    );
}

/// Every variant of both enums has at least one example, so a new variant cannot reach
/// the wire without a golden file and a place in the specification.
#[test]
fn every_variant_has_an_example() {
    let mut requests: BTreeSet<usize> = requests()
        .iter()
        .filter_map(|(_, typed)| typed.as_ref().map(request_variant))
        .collect();
    // The STORE examples are built field by field; they decode as `Request::Store`.
    requests.insert(request_variant(&store_example()));
    assert_eq!(requests.len(), REQUEST_VARIANTS);
    let responses: BTreeSet<usize> = responses()
        .iter()
        .map(|(_, response)| response_variant(response))
        .collect();
    assert_eq!(responses.len(), RESPONSE_VARIANTS);
}

fn store_example() -> Request {
    let frame = store(None, ExpiryChange::Keep);
    frame::decode_frame::<Request>(&frame)
        .expect("decodes")
        .expect("whole")
        .0
}

/// The STORE frames (Keep, Set, Clear) decode as `Request::Store` and re-encode to the
/// same bytes.
#[test]
fn store_examples_decode_as_requests() {
    for (example, _) in requests() {
        if !example.file.starts_with("request-store") {
            continue;
        }
        let (request, used) = frame::decode_frame::<Request>(&example.frame)
            .expect("decodes")
            .expect("a whole frame");
        assert_eq!(used, example.frame.len());
        assert!(matches!(request, Request::Store { .. }), "{}", example.file);
        assert_eq!(frame_of(&request), example.frame, "{}", example.file);
    }
}

/// Hello is the same layout in both directions and for every version (PROTOCOL.md §3).
#[test]
fn hello_frames_are_identical_in_both_directions() {
    let request = frame_of(&Request::Hello { version: 1 });
    let response = frame_of(&Response::Hello { version: 1 });
    assert_eq!(request, response);
    assert_eq!(request, [0, 0, 0, 2, 0, 1]);
}

/// The payload of an `ErrorCode` is its index in PROTOCOL.md §8's table.
#[test]
fn error_code_tags_follow_the_table() {
    for (index, code) in ErrorCode::ALL.into_iter().enumerate() {
        let payload = frame_of(&code)[frame::HEADER_LEN..].to_vec();
        assert_eq!(payload, [u8::try_from(index).expect("< 128")], "{code}");
    }
}
