//! Writes a seed corpus for the `request` target into the directory given as the argument:
//! well-formed conversations (Hello first, then every operation, with the placeholder
//! session id) for libFuzzer to mutate. Without them it would rarely get past `Hello`.
//!
//! With a second directory, the same conversations as JSON lines for the `json_request`
//! target (without the first `{`, which that target adds).
//!
//! `cargo run --release --bin seeds -- corpus/request corpus/json_request`

use avp_fuzz::{PASSPHRASE, PLACEHOLDER_SESSION};
use avp_protocol::types::Cursor;
use avp_protocol::{
    ExpiryChange, Labels, PROTOCOL_VERSION, Passphrase, Request, SecretName, SecretValue,
    SessionId, Timestamp, WorkspaceId, frame,
};
use std::collections::BTreeMap;

fn session() -> SessionId {
    SessionId::parse(PLACEHOLDER_SESSION).expect("placeholder is a valid id")
}

fn name(n: &str) -> SecretName {
    SecretName::new(n).unwrap()
}

fn store(n: &str, value: &[u8]) -> Request {
    let mut labels = BTreeMap::new();
    labels.insert("env".to_owned(), "prod".to_owned());
    Request::Store {
        session: session(),
        name: name(n),
        value: SecretValue::from_slice(value),
        labels: Some(Labels::new(labels).unwrap()),
        expires_at: ExpiryChange::Set(Timestamp::from_unix(4_000_000_000)),
    }
}

fn conversations() -> Vec<(&'static str, Vec<Request>)> {
    let s = session;
    vec![
        (
            "discover",
            vec![Request::Discover, Request::Status, Request::Workspaces],
        ),
        (
            "store-retrieve",
            vec![
                store("API_KEY", b"v1"),
                store("API_KEY", b"\x00\xff"),
                Request::Retrieve {
                    session: s(),
                    name: name("API_KEY"),
                    version: Some(1),
                },
                Request::History {
                    session: s(),
                    name: name("API_KEY"),
                },
            ],
        ),
        (
            "rotate-delete-list",
            vec![
                store("a.b-c_d", b""),
                Request::Rotate {
                    session: s(),
                    name: name("a.b-c_d"),
                    value: SecretValue::from_slice(b"rotated"),
                },
                Request::List {
                    session: s(),
                    label_filter: Labels::empty(),
                    cursor: Some(Cursor::after(&name("a"))),
                    limit: Some(1),
                },
                Request::Delete {
                    session: s(),
                    name: name("a.b-c_d"),
                },
                Request::Terminate { session: s() },
            ],
        ),
        (
            "lock-unlock",
            vec![
                Request::Lock,
                Request::Unlock {
                    passphrase: Passphrase::new("wrong"),
                },
                Request::Unlock {
                    passphrase: Passphrase::new(PASSPHRASE),
                },
                Request::Authenticate {
                    workspace: WorkspaceId::new("team/job").unwrap(),
                    agent_id: "seed".into(),
                    ttl_seconds: Some(60),
                    wait_for_unlock: false,
                },
            ],
        ),
        (
            "passphrase",
            vec![
                Request::ChangePassphrase {
                    old: Passphrase::new(PASSPHRASE),
                    new: Passphrase::new("new one"),
                },
                Request::Init {
                    passphrase: Passphrase::new("again"),
                    work_factor: Some(10),
                },
            ],
        ),
    ]
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds DIR");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for (label, requests) in conversations() {
        let mut bytes = frame::encode(&Request::Hello {
            version: PROTOCOL_VERSION,
        })
        .unwrap()
        .to_vec();
        for request in &requests {
            bytes.extend_from_slice(&frame::encode(request).unwrap());
        }
        std::fs::write(format!("{dir}/seed-{label}"), &bytes).expect("write a seed");
    }
    let Some(json_dir) = std::env::args().nth(2) else {
        return;
    };
    std::fs::create_dir_all(&json_dir).expect("create the JSON corpus directory");
    for (label, requests) in conversations() {
        let mut lines = Vec::new();
        for request in &requests {
            lines.extend_from_slice(&avp_protocol::json::request::encode_request(request));
        }
        // The target writes the connection's first byte `{` itself.
        std::fs::write(format!("{json_dir}/seed-{label}"), &lines[1..]).expect("write a seed");
    }
}
