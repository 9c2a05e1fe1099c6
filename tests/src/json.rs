//! The JSON-lines wire (PROTOCOL.md §12) for the harness: a [`Conn`] made by
//! [`crate::TestAgent::connect_json`] sends each request as a JSON line (the protocol
//! crate's own encoder) and reads the answer line back into the [`Response`] the bincode
//! wire would have given, so any test written against `Conn` can run over either wire.
//!
//! Reading an answer back needs the request: `{"ok":true}` is `Locked` after LOCK and
//! `Terminated` after TERMINATE.

use crate::Conn;
use avp_protocol::json::time;
use avp_protocol::{
    BackendInfo, BackendStatus, Capabilities, Cursor, DeleteResult, DiscoverInfo, ErrorCode,
    ErrorResponse, Hardening, HistoryResult, Labels, Limits, ListPage, Request, Response,
    RotateResult, Secret, SecretMeta, SecretName, SecretValue, SessionId, SessionInfo, StatusInfo,
    StoreResult, Timestamp, VaultState, VersionInfo, WorkspaceId,
};
use avp_protocol::{LockReason, WorkspaceCount, WorkspacesResult};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Which encoding a [`Conn`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// Framed bincode (PROTOCOL.md §3).
    #[default]
    Bincode,
    /// JSON lines (PROTOCOL.md §12).
    Json,
}

impl Conn {
    /// Writes `request` as one JSON line and reads the answer line; `None` if the agent
    /// closed the connection without one.
    pub(crate) fn json_call(&mut self, request: &Request) -> Option<Response> {
        let line = avp_protocol::json::request::encode_request(request);
        self.stream.write_all(&line).ok()?;
        let answer = read_line(&mut self.stream)?;
        Some(decode_answer(request, &answer))
    }
}

/// Reads up to and including the next `\n`, a byte at a time (so nothing of a later answer
/// is consumed); `None` at end of stream before a whole line.
pub fn read_line(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(1) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Some(line);
                }
            }
            Ok(_) | Err(_) => return None,
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string in {v}"))
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is an integer in {v}"))
}

fn u32_of(v: &Value, key: &str) -> u32 {
    u32::try_from(u64_of(v, key)).expect("a u32")
}

fn bool_of(v: &Value, key: &str) -> bool {
    v[key]
        .as_bool()
        .unwrap_or_else(|| panic!("{key} is a boolean in {v}"))
}

fn time_of(v: &Value, key: &str) -> Timestamp {
    time::parse(str_of(v, key)).unwrap_or_else(|| panic!("{key} is RFC 3339 in {v}"))
}

fn time_opt(v: &Value, key: &str) -> Option<Timestamp> {
    (!v[key].is_null()).then(|| time_of(v, key))
}

fn opt_u64(v: &Value, key: &str) -> Option<u64> {
    (!v[key].is_null()).then(|| u64_of(v, key))
}

fn labels_of(v: &Value, key: &str) -> Labels {
    let map: BTreeMap<String, String> =
        serde_json::from_value(v[key].clone()).expect("labels are an object of strings");
    Labels::new(map).expect("valid labels")
}

fn name_of(v: &Value) -> SecretName {
    SecretName::new(str_of(v, "name")).expect("a valid name")
}

fn meta_of(v: &Value) -> SecretMeta {
    SecretMeta {
        name: name_of(v),
        version: u32_of(v, "version"),
        labels: labels_of(v, "labels"),
        created_at: time_of(v, "created_at"),
        updated_at: time_of(v, "updated_at"),
        expires_at: time_opt(v, "expires_at"),
    }
}

fn backend_status(text: &str) -> BackendStatus {
    match text {
        "available" => BackendStatus::Available,
        "locked" => BackendStatus::Locked,
        "unavailable" => BackendStatus::Unavailable,
        "degraded" => BackendStatus::Degraded,
        other => panic!("unknown backend status {other}"),
    }
}

fn lock_reason(v: &Value, key: &str) -> Option<LockReason> {
    let text = v[key].as_str()?;
    let reason = LockReason::ALL.into_iter().find(|r| r.as_str() == text);
    Some(reason.unwrap_or_else(|| panic!("unknown lock reason {text}")))
}

fn vault_state(text: &str) -> VaultState {
    match text {
        "uninitialized" => VaultState::Uninitialized,
        "locked" => VaultState::Locked,
        "unlocked" => VaultState::Unlocked,
        other => panic!("unknown vault state {other}"),
    }
}

/// The [`Response`] an answer line to `request` stands for. Panics on a line that is not a
/// well-formed answer (§12.6): that is a failure of the JSON wire under test.
pub fn decode_answer(request: &Request, line: &[u8]) -> Response {
    assert_eq!(line.last(), Some(&b'\n'), "an answer ends with a newline");
    let v: Value = serde_json::from_slice(line).expect("an answer is JSON");
    if v["ok"] == Value::Bool(false) {
        let error = &v["error"];
        let code: ErrorCode = str_of(error, "code").parse().expect("a known code");
        return Response::Error(ErrorResponse::new(code, str_of(error, "message")));
    }
    assert_eq!(v["ok"], Value::Bool(true), "ok is a boolean: {v}");
    match request {
        Request::Hello { .. } => Response::Hello {
            version: u32_of(&v, "version"),
        },
        Request::Discover => Response::Discover(DiscoverInfo {
            protocol_version: u32_of(&v, "protocol_version"),
            agent_version: str_of(&v, "agent_version").into(),
            conformance: str_of(&v, "conformance").into(),
            backend: BackendInfo {
                name: str_of(&v["backend"], "name").into(),
                status: backend_status(str_of(&v["backend"], "status")),
                degraded_since: time_opt(&v["backend"], "degraded_since"),
            },
            capabilities: Capabilities {
                versioning: bool_of(&v["capabilities"], "versioning"),
                expiration: bool_of(&v["capabilities"], "expiration"),
                rotation: bool_of(&v["capabilities"], "rotation"),
                audit: bool_of(&v["capabilities"], "audit"),
            },
            auth_methods: serde_json::from_value(v["auth_methods"].clone()).expect("strings"),
            limits: serde_json::from_value::<Limits>(v["limits"].clone()).expect("limits"),
        }),
        Request::Authenticate { .. } => Response::Authenticated(SessionInfo {
            session: SessionId::parse(str_of(&v, "session_id")).expect("a session id"),
            workspace: WorkspaceId::new(str_of(&v, "workspace")).expect("a workspace"),
            expires_at: time_of(&v, "expires_at"),
            ttl_seconds: u64_of(&v, "ttl_seconds"),
        }),
        Request::Terminate { .. } | Request::TerminateConnectionSession => Response::Terminated,
        Request::Store { .. } => Response::Stored(StoreResult {
            created: bool_of(&v, "created"),
            version: u32_of(&v, "version"),
            created_at: time_of(&v, "created_at"),
            updated_at: time_of(&v, "updated_at"),
        }),
        Request::Retrieve { .. } | Request::RetrieveInConnectionSession { .. } => {
            use base64::Engine;
            let value = base64::engine::general_purpose::STANDARD
                .decode(str_of(&v, "value"))
                .expect("the value is base64");
            Response::Retrieved(Secret {
                name: name_of(&v),
                value: SecretValue::from_vec(value),
                version: u32_of(&v, "version"),
                labels: labels_of(&v, "labels"),
                created_at: time_of(&v, "created_at"),
                updated_at: time_of(&v, "updated_at"),
                expires_at: time_opt(&v, "expires_at"),
            })
        }
        Request::Delete { .. } => Response::Deleted(DeleteResult {
            deleted: bool_of(&v, "deleted"),
        }),
        Request::List { .. } => Response::Listed(ListPage {
            secrets: v["secrets"]
                .as_array()
                .expect("secrets is an array")
                .iter()
                .map(meta_of)
                .collect(),
            next_cursor: v["next_cursor"].as_str().map(Cursor::from_wire),
        }),
        Request::Rotate { .. } => Response::Rotated(RotateResult {
            previous_version: u32_of(&v, "previous_version"),
            new_version: u32_of(&v, "new_version"),
            updated_at: time_of(&v, "updated_at"),
        }),
        Request::History { .. } => Response::History(HistoryResult {
            name: name_of(&v),
            versions: v["versions"]
                .as_array()
                .expect("versions is an array")
                .iter()
                .map(|version| VersionInfo {
                    version: u32_of(version, "version"),
                    created_at: time_of(version, "created_at"),
                })
                .collect(),
        }),
        Request::Init { .. } => Response::Initialized,
        Request::Unlock { .. } => Response::Unlocked,
        Request::Lock => Response::Locked,
        Request::Status => Response::Status(StatusInfo {
            state: vault_state(str_of(&v, "state")),
            vault_location: str_of(&v, "vault_location").into(),
            backend: str_of(&v, "backend").into(),
            workspaces: u64_of(&v, "workspaces"),
            secrets: u64_of(&v, "secrets"),
            sessions: u64_of(&v, "sessions"),
            idle_lock_in_seconds: opt_u64(&v, "idle_lock_in_seconds"),
            max_unlock_in_seconds: opt_u64(&v, "max_unlock_in_seconds"),
            agent_version: str_of(&v, "agent_version").into(),
            protocol_version: u32_of(&v, "protocol_version"),
            pid: u32_of(&v, "pid"),
            hardening: Hardening {
                dumpable: bool_of(&v["hardening"], "dumpable"),
                core_limit: u64_of(&v["hardening"], "core_limit"),
                locked_memory_bytes: u64_of(&v["hardening"], "locked_memory_bytes"),
                memlock_limit: opt_u64(&v["hardening"], "memlock_limit"),
            },
            audit_log: v["audit_log"].as_str().map(str::to_owned),
            backend_status: backend_status(str_of(&v, "backend_status")),
            degraded_since: time_opt(&v, "degraded_since"),
            last_lock_reason: lock_reason(&v, "last_lock_reason"),
            last_locked_at: time_opt(&v, "last_locked_at"),
        }),
        Request::Workspaces => Response::Workspaces(WorkspacesResult {
            workspaces: v["workspaces"]
                .as_array()
                .expect("workspaces is an array")
                .iter()
                .map(|w| WorkspaceCount {
                    workspace: WorkspaceId::new(str_of(w, "workspace")).expect("a workspace"),
                    secrets: u64_of(w, "secrets"),
                })
                .collect(),
            truncated: bool_of(&v, "truncated"),
        }),
        Request::ChangePassphrase { .. } => Response::PassphraseChanged,
    }
}
