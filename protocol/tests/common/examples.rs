//! One fixed example of every `Request` and `Response` variant, and an exhaustive match
//! that numbers the variants, so a new variant cannot be added without an example.

use avp_protocol::*;
use std::collections::BTreeMap;

/// Number of `Request` variants. [`request_variant`] does not compile when a variant is
/// added: give it the next index, raise this count, and add an example to [`every_request`]
/// and an arm to [`request`].
pub const REQUEST_VARIANTS: usize = 18;

/// The index of a request's variant, by an exhaustive match.
pub fn request_variant(request: &Request) -> usize {
    match request {
        Request::Hello { .. } => 0,
        Request::Discover => 1,
        Request::Authenticate { .. } => 2,
        Request::Terminate { .. } => 3,
        Request::Store { .. } => 4,
        Request::Retrieve { .. } => 5,
        Request::Delete { .. } => 6,
        Request::List { .. } => 7,
        Request::Rotate { .. } => 8,
        Request::History { .. } => 9,
        Request::Init { .. } => 10,
        Request::Unlock { .. } => 11,
        Request::Lock => 12,
        Request::Status => 13,
        Request::ChangePassphrase { .. } => 14,
        Request::Workspaces => 15,
        Request::RetrieveInConnectionSession { .. } => 16,
        Request::TerminateConnectionSession => 17,
    }
}

fn name(text: &str) -> SecretName {
    SecretName::new(text).expect("valid name")
}

fn session() -> SessionId {
    SessionId::generate().expect("OS random generator")
}

fn some_labels() -> Labels {
    Labels::new(BTreeMap::from([
        ("env".to_owned(), "prod".to_owned()),
        ("team".to_owned(), "ünïcödé".to_owned()),
    ]))
    .expect("valid labels")
}

/// One example of every request variant, each holding a secret value or passphrase equal to
/// `secret` where the variant has one.
pub fn every_request_holding(secret: &[u8]) -> Vec<Request> {
    let text = std::str::from_utf8(secret).expect("a UTF-8 secret, for the passphrases");
    vec![
        Request::Hello {
            version: PROTOCOL_VERSION,
        },
        Request::Discover,
        Request::Authenticate {
            workspace: WorkspaceId::new("team/job").expect("valid workspace"),
            agent_id: "ci-runner".into(),
            ttl_seconds: Some(60),
            wait_for_unlock: true,
        },
        Request::Terminate { session: session() },
        Request::Store {
            session: session(),
            name: name("db.password"),
            value: SecretValue::from_slice(secret),
            labels: Some(some_labels()),
            expires_at: ExpiryChange::Set(Timestamp::from_unix(1_900_000_000)),
        },
        Request::Retrieve {
            session: session(),
            name: name("db.password"),
            version: Some(3),
        },
        Request::Delete {
            session: session(),
            name: name("db.password"),
        },
        Request::List {
            session: session(),
            label_filter: some_labels(),
            cursor: Some(Cursor::after(&name("api_key"))),
            limit: Some(10),
        },
        Request::Rotate {
            session: session(),
            name: name("db.password"),
            value: SecretValue::from_slice(secret),
        },
        Request::History {
            session: session(),
            name: name("db.password"),
        },
        Request::Init {
            passphrase: Passphrase::new(text),
            work_factor: Some(10),
        },
        Request::Unlock {
            passphrase: Passphrase::new(text),
        },
        Request::Lock,
        Request::Status,
        Request::ChangePassphrase {
            old: Passphrase::new(text),
            new: Passphrase::new(text),
        },
        Request::Workspaces,
        Request::RetrieveInConnectionSession {
            name: name("api_key"),
            version: Some(2),
        },
        Request::TerminateConnectionSession,
    ]
}

/// One example of every request variant.
pub fn every_request() -> Vec<Request> {
    every_request_holding(b"hunter2")
}

/// Number of `Response` variants; see [`REQUEST_VARIANTS`] for what to do when it changes.
pub const RESPONSE_VARIANTS: usize = 17;

/// The index of a response's variant, by an exhaustive match.
pub fn response_variant(response: &Response) -> usize {
    match response {
        Response::Hello { .. } => 0,
        Response::Discover(_) => 1,
        Response::Authenticated(_) => 2,
        Response::Terminated => 3,
        Response::Stored(_) => 4,
        Response::Retrieved(_) => 5,
        Response::Deleted(_) => 6,
        Response::Listed(_) => 7,
        Response::Rotated(_) => 8,
        Response::History(_) => 9,
        Response::Initialized => 10,
        Response::Unlocked => 11,
        Response::Locked => 12,
        Response::Status(_) => 13,
        Response::PassphraseChanged => 14,
        Response::Error(_) => 15,
        Response::Workspaces(_) => 16,
    }
}

/// One example of every response variant; `Retrieved` holds `secret` as its value.
/// The STATUS answer of an unlocked agent that every example set uses.
pub fn unlocked_status() -> StatusInfo {
    StatusInfo {
        state: VaultState::Unlocked,
        vault_location: "/home/u/.local/share/avp".into(),
        backend: "vault".into(),
        workspaces: 2,
        secrets: 7,
        sessions: 1,
        idle_lock_in_seconds: Some(900),
        max_unlock_in_seconds: Some(43_200),
        agent_version: "0.1.0".into(),
        protocol_version: PROTOCOL_VERSION,
        pid: 4242,
        hardening: Hardening {
            dumpable: false,
            core_limit: 0,
            locked_memory_bytes: 65_536,
            memlock_limit: None,
        },
        audit_log: Some("/home/u/.local/state/avp/audit.jsonl".into()),
        backend_status: BackendStatus::Available,
        degraded_since: None,
        last_lock_reason: Some(LockReason::ScreenLock),
        last_locked_at: Some(Timestamp::from_unix(1_700_000_200)),
    }
}

pub fn every_response_holding(secret: &[u8]) -> Vec<Response> {
    let meta = SecretMeta {
        name: name("api_key"),
        version: 2,
        labels: some_labels(),
        created_at: Timestamp::from_unix(1_700_000_000),
        updated_at: Timestamp::from_unix(1_700_000_100),
        expires_at: None,
    };
    vec![
        Response::Hello {
            version: PROTOCOL_VERSION,
        },
        Response::Discover(DiscoverInfo {
            protocol_version: PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            conformance: CONFORMANCE.into(),
            backend: BackendInfo {
                name: "vault".into(),
                status: BackendStatus::Locked,
                degraded_since: None,
            },
            capabilities: Capabilities {
                versioning: true,
                expiration: true,
                rotation: true,
                audit: false,
            },
            auth_methods: vec!["peer_credentials".into()],
            limits: Limits::AVP,
        }),
        Response::Authenticated(SessionInfo {
            session: session(),
            workspace: WorkspaceId::default_workspace(),
            expires_at: Timestamp::from_unix(1_700_003_600),
            ttl_seconds: 3_600,
        }),
        Response::Terminated,
        Response::Stored(StoreResult {
            created: true,
            version: 1,
            created_at: Timestamp::from_unix(1_700_000_000),
            updated_at: Timestamp::from_unix(1_700_000_000),
        }),
        Response::Retrieved(Secret {
            name: name("db.password"),
            value: SecretValue::from_slice(secret),
            version: 4,
            labels: some_labels(),
            created_at: Timestamp::from_unix(1_700_000_000),
            updated_at: Timestamp::from_unix(1_700_000_100),
            expires_at: Some(Timestamp::from_unix(-1)),
        }),
        Response::Deleted(DeleteResult { deleted: false }),
        Response::Listed(ListPage {
            secrets: vec![meta.clone(), meta],
            next_cursor: Some(Cursor::after(&name("api_key"))),
        }),
        Response::Rotated(RotateResult {
            previous_version: 4,
            new_version: 5,
            updated_at: Timestamp::from_unix(1_700_000_200),
        }),
        Response::History(HistoryResult {
            name: name("db.password"),
            versions: vec![VersionInfo {
                version: 1,
                created_at: Timestamp::from_unix(1_700_000_000),
            }],
        }),
        Response::Initialized,
        Response::Unlocked,
        Response::Locked,
        Response::Status(unlocked_status()),
        Response::PassphraseChanged,
        Response::Error(ErrorResponse::new(
            ErrorCode::VaultLocked,
            "vault is locked — run `avp unlock`",
        )),
        Response::Workspaces(WorkspacesResult {
            workspaces: vec![WorkspaceCount {
                workspace: WorkspaceId::new("team/job").expect("valid workspace"),
                secrets: 3,
            }],
            truncated: false,
        }),
    ]
}

/// One example of every response variant.
pub fn every_response() -> Vec<Response> {
    every_response_holding(b"hunter2")
}
