//! Answers on the JSON wire (PROTOCOL.md §12.6, §12.7): one [`Response`] → one line.
//!
//! Each answer is a small view struct over the response, borrowed, serialized in the key
//! order §12.7 gives; the match over [`Response`] is exhaustive, so a new variant does not
//! compile until the JSON wire has it. The line is built in a [`Zeroizing`] buffer sized for
//! the answer up front, so a RETRIEVE's base64 text is not left behind by a reallocation.

use super::encode::base64_of;
use super::time;
use crate::error::{ErrorCode, ErrorResponse};
use crate::response::{
    BackendInfo, Capabilities, DiscoverInfo, Hardening, HistoryResult, ListPage, Response, Secret,
    SecretMeta, SessionInfo, StatusInfo, StoreResult, WorkspaceCount, WorkspacesResult,
};
use crate::types::{Labels, Limits, SecretName, SessionId, Timestamp, WorkspaceId};
use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

/// A time, written as RFC 3339 UTC.
struct Time(Timestamp);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time::format(self.0))
    }
}

fn time_opt(time: Option<Timestamp>) -> Option<Time> {
    time.map(Time)
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

#[derive(Serialize)]
struct Hello {
    ok: bool,
    version: u32,
}

#[derive(Serialize)]
struct Backend<'a> {
    name: &'a str,
    status: &'static str,
    degraded_since: Option<Time>,
}

impl<'a> From<&'a BackendInfo> for Backend<'a> {
    fn from(info: &'a BackendInfo) -> Self {
        let BackendInfo {
            name,
            status,
            degraded_since,
        } = info;
        Self {
            name,
            status: status.as_str(),
            degraded_since: time_opt(*degraded_since),
        }
    }
}

#[derive(Serialize)]
struct Discover<'a> {
    ok: bool,
    protocol_version: u32,
    agent_version: &'a str,
    conformance: &'a str,
    backend: Backend<'a>,
    capabilities: &'a Capabilities,
    auth_methods: &'a [String],
    limits: &'a Limits,
}

#[derive(Serialize)]
struct Authenticated<'a> {
    ok: bool,
    session_id: &'a SessionId,
    workspace: &'a WorkspaceId,
    expires_at: Time,
    ttl_seconds: u64,
}

#[derive(Serialize)]
struct Stored {
    ok: bool,
    created: bool,
    version: u32,
    created_at: Time,
    updated_at: Time,
}

#[derive(Serialize)]
struct Retrieved<'a, V: Serialize> {
    ok: bool,
    name: &'a SecretName,
    value: V,
    version: u32,
    labels: &'a Labels,
    created_at: Time,
    updated_at: Time,
    expires_at: Option<Time>,
}

#[derive(Serialize)]
struct Deleted {
    ok: bool,
    deleted: bool,
}

#[derive(Serialize)]
struct Meta<'a> {
    name: &'a SecretName,
    version: u32,
    labels: &'a Labels,
    created_at: Time,
    updated_at: Time,
    expires_at: Option<Time>,
}

impl<'a> From<&'a SecretMeta> for Meta<'a> {
    fn from(meta: &'a SecretMeta) -> Self {
        Self {
            name: &meta.name,
            version: meta.version,
            labels: &meta.labels,
            created_at: Time(meta.created_at),
            updated_at: Time(meta.updated_at),
            expires_at: time_opt(meta.expires_at),
        }
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    ok: bool,
    secrets: Vec<Meta<'a>>,
    next_cursor: Option<&'a str>,
}

#[derive(Serialize)]
struct Rotated {
    ok: bool,
    previous_version: u32,
    new_version: u32,
    updated_at: Time,
}

#[derive(Serialize)]
struct Version {
    version: u32,
    created_at: Time,
}

#[derive(Serialize)]
struct History<'a> {
    ok: bool,
    name: &'a SecretName,
    versions: Vec<Version>,
}

#[derive(Serialize)]
struct Status<'a> {
    ok: bool,
    state: &'static str,
    vault_location: &'a str,
    backend: &'a str,
    workspaces: u64,
    secrets: u64,
    sessions: u64,
    idle_lock_in_seconds: Option<u64>,
    max_unlock_in_seconds: Option<u64>,
    agent_version: &'a str,
    protocol_version: u32,
    pid: u32,
    hardening: &'a Hardening,
    audit_log: Option<&'a str>,
    backend_status: &'static str,
    degraded_since: Option<Time>,
    last_lock_reason: Option<&'static str>,
    last_locked_at: Option<Time>,
}

#[derive(Serialize)]
struct Workspaces<'a> {
    ok: bool,
    workspaces: &'a [WorkspaceCount],
    truncated: bool,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct Failed<'a> {
    ok: bool,
    error: ErrorBody<'a>,
}

/// The line (with its `\n`) answering with `error`.
pub fn encode_error(code: ErrorCode, message: &str) -> Zeroizing<Vec<u8>> {
    let failed = Failed {
        ok: false,
        error: ErrorBody {
            code: code.as_str(),
            message,
        },
    };
    line(&failed, 64 + message.len())
}

/// The answer to a response that could not be written (an agent bug): never expected,
/// but the client still gets one well-formed line.
const UNWRITABLE: &[u8] = b"{\"ok\":false,\"error\":{\"code\":\"BACKEND_ERROR\",\"message\":\
    \"the agent could not write its answer as JSON: this is an avp-agent bug, please report it\"}}\n";

fn line<T: Serialize>(view: &T, size_hint: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(size_hint + 1));
    if serde_json::to_writer(&mut *out, view).is_err() {
        out.clear();
        out.extend_from_slice(UNWRITABLE);
        return out;
    }
    out.push(b'\n');
    out
}

/// Room for a label map written as JSON: its text plus quotes, colons and commas.
fn labels_hint(labels: &Labels) -> usize {
    labels.iter().map(|(k, v)| k.len() + v.len() + 6).sum()
}

/// The line (with its `\n`) carrying `response`.
pub fn encode_response(response: &Response) -> Zeroizing<Vec<u8>> {
    const OK: bool = true;
    match response {
        Response::Hello { version } => line(
            &Hello {
                ok: OK,
                version: *version,
            },
            32,
        ),
        Response::Discover(DiscoverInfo {
            protocol_version,
            agent_version,
            conformance,
            backend,
            capabilities,
            auth_methods,
            limits,
        }) => line(
            &Discover {
                ok: OK,
                protocol_version: *protocol_version,
                agent_version,
                conformance,
                backend: backend.into(),
                capabilities,
                auth_methods,
                limits,
            },
            1024,
        ),
        Response::Authenticated(SessionInfo {
            session,
            workspace,
            expires_at,
            ttl_seconds,
        }) => line(
            &Authenticated {
                ok: OK,
                session_id: session,
                workspace,
                expires_at: Time(*expires_at),
                ttl_seconds: *ttl_seconds,
            },
            512,
        ),
        Response::Stored(StoreResult {
            created,
            version,
            created_at,
            updated_at,
        }) => line(
            &Stored {
                ok: OK,
                created: *created,
                version: *version,
                created_at: Time(*created_at),
                updated_at: Time(*updated_at),
            },
            160,
        ),
        Response::Retrieved(Secret {
            name,
            value,
            version,
            labels,
            created_at,
            updated_at,
            expires_at,
        }) => {
            let view = Retrieved {
                ok: OK,
                name,
                value: base64_of(value.expose_secret()),
                version: *version,
                labels,
                created_at: Time(*created_at),
                updated_at: Time(*updated_at),
                expires_at: time_opt(*expires_at),
            };
            let hint = 512 + name.as_str().len() + value.len().div_ceil(3) * 4;
            // Label text may grow when escaped; the zeroizing allocator covers the rare
            // reallocation in the agent.
            line(&view, hint + labels_hint(labels))
        }
        Response::Deleted(result) => line(
            &Deleted {
                ok: OK,
                deleted: result.deleted,
            },
            32,
        ),
        Response::Listed(ListPage {
            secrets,
            next_cursor,
        }) => {
            let hint = secrets
                .iter()
                .map(|m| 160 + m.name.as_str().len() + labels_hint(&m.labels))
                .sum::<usize>();
            let view = Listed {
                ok: OK,
                secrets: secrets.iter().map(Meta::from).collect(),
                next_cursor: next_cursor.as_ref().map(|c| c.as_str()),
            };
            line(&view, 64 + hint)
        }
        Response::Rotated(result) => line(
            &Rotated {
                ok: OK,
                previous_version: result.previous_version,
                new_version: result.new_version,
                updated_at: Time(result.updated_at),
            },
            128,
        ),
        Response::History(HistoryResult { name, versions }) => line(
            &History {
                ok: OK,
                name,
                versions: versions
                    .iter()
                    .map(|v| Version {
                        version: v.version,
                        created_at: Time(v.created_at),
                    })
                    .collect(),
            },
            64 + name.as_str().len() + 56 * versions.len(),
        ),
        Response::Initialized
        | Response::Unlocked
        | Response::Locked
        | Response::Terminated
        | Response::PassphraseChanged => line(&Done { ok: OK }, 16),
        Response::Status(StatusInfo {
            state,
            vault_location,
            backend,
            workspaces,
            secrets,
            sessions,
            idle_lock_in_seconds,
            max_unlock_in_seconds,
            agent_version,
            protocol_version,
            pid,
            hardening,
            audit_log,
            backend_status,
            degraded_since,
            last_lock_reason,
            last_locked_at,
        }) => line(
            &Status {
                ok: OK,
                state: state.as_str(),
                vault_location,
                backend,
                workspaces: *workspaces,
                secrets: *secrets,
                sessions: *sessions,
                idle_lock_in_seconds: *idle_lock_in_seconds,
                max_unlock_in_seconds: *max_unlock_in_seconds,
                agent_version,
                protocol_version: *protocol_version,
                pid: *pid,
                hardening,
                audit_log: audit_log.as_deref(),
                backend_status: backend_status.as_str(),
                degraded_since: time_opt(*degraded_since),
                last_lock_reason: last_lock_reason.map(|reason| reason.as_str()),
                last_locked_at: time_opt(*last_locked_at),
            },
            640 + vault_location.len() + audit_log.as_ref().map_or(0, String::len),
        ),
        Response::Workspaces(WorkspacesResult {
            workspaces,
            truncated,
        }) => line(
            &Workspaces {
                ok: OK,
                workspaces,
                truncated: *truncated,
            },
            64 + workspaces
                .iter()
                .map(|w| 40 + w.workspace.as_str().len())
                .sum::<usize>(),
        ),
        Response::Error(ErrorResponse { code, message }) => encode_error(*code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretValue;
    use std::collections::BTreeMap;

    fn text(response: &Response) -> String {
        String::from_utf8(encode_response(response).to_vec()).unwrap()
    }

    #[test]
    fn a_retrieved_secret_is_one_line_with_base64_and_rfc3339() {
        let secret = Secret {
            name: SecretName::new("db.password").unwrap(),
            value: SecretValue::from_slice(b"hunter2"),
            version: 2,
            labels: Labels::new(BTreeMap::from([("env".into(), "prod".into())])).unwrap(),
            created_at: Timestamp::from_unix(1_700_000_000),
            updated_at: Timestamp::from_unix(1_700_000_100),
            expires_at: None,
        };
        assert_eq!(
            text(&Response::Retrieved(secret)),
            "{\"ok\":true,\"name\":\"db.password\",\"value\":\"aHVudGVyMg==\",\"version\":2,\
             \"labels\":{\"env\":\"prod\"},\"created_at\":\"2023-11-14T22:13:20Z\",\
             \"updated_at\":\"2023-11-14T22:15:00Z\",\"expires_at\":null}\n"
        );
    }

    #[test]
    fn errors_carry_the_code_string() {
        let error = Response::Error(ErrorResponse::new(ErrorCode::SecretNotFound, "no \"such\""));
        assert_eq!(
            text(&error),
            "{\"ok\":false,\"error\":{\"code\":\"SECRET_NOT_FOUND\",\"message\":\"no \\\"such\\\"\"}}\n"
        );
        assert_eq!(text(&Response::Locked), "{\"ok\":true}\n");
    }

    #[test]
    fn the_fallback_line_is_valid_json() {
        let value: serde_json::Value = serde_json::from_slice(UNWRITABLE).unwrap();
        assert_eq!(value["error"]["code"], "BACKEND_ERROR");
    }
}
