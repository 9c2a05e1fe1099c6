//! Requests → JSON lines (PROTOCOL.md §12.7), for clients and tests: the reverse of
//! [`super::request::decode_request`]. The match is exhaustive, so a new [`Request`] variant
//! does not compile until the JSON wire has it (and the round-trip tests then demand its
//! decoding too).

use super::time;
use crate::request::Request;
use crate::types::ExpiryChange;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use zeroize::Zeroizing;

/// A secret value as base64 text in a wiped buffer.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = Zeroizing::new(String::with_capacity(
            base64::encoded_len(self.0.len(), true).unwrap_or(0),
        ));
        STANDARD.encode_string(self.0, &mut text);
        serializer.serialize_str(&text)
    }
}

pub(super) fn base64_of(bytes: &[u8]) -> impl Serialize + '_ {
    Base64(bytes)
}

/// The JSON line (with its `\n`) of `request`, in a wiped buffer: how a client speaks the
/// JSON wire.
pub fn encode_request(request: &Request) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(256 + value_len(request) * 4 / 3));
    // Writing JSON into a Vec fails only for non-string map keys, which no request has.
    let _ = write_request(&mut out, request);
    out.push(b'\n');
    out
}

fn value_len(request: &Request) -> usize {
    match request {
        Request::Store { value, .. } | Request::Rotate { value, .. } => value.len(),
        _ => 0,
    }
}

fn write_request(out: &mut Vec<u8>, request: &Request) -> Result<(), serde_json::Error> {
    let mut ser = serde_json::Serializer::new(out);
    let mut map = ser.serialize_map(None)?;
    map.serialize_entry("op", request.operation())?;
    match request {
        Request::Hello { version } => map.serialize_entry("version", version)?,
        Request::Discover
        | Request::Lock
        | Request::Status
        | Request::Workspaces
        | Request::TerminateConnectionSession => {}
        Request::Authenticate {
            workspace,
            agent_id,
            ttl_seconds,
            wait_for_unlock,
        } => {
            map.serialize_entry("workspace", workspace)?;
            map.serialize_entry("agent_id", agent_id)?;
            if let Some(ttl) = ttl_seconds {
                map.serialize_entry("ttl_seconds", ttl)?;
            }
            if *wait_for_unlock {
                map.serialize_entry("wait_for_unlock", &true)?;
            }
        }
        Request::RetrieveInConnectionSession { name, version } => {
            map.serialize_entry("name", name)?;
            if let Some(version) = version {
                map.serialize_entry("version", version)?;
            }
        }
        Request::Terminate { session } => map.serialize_entry("session_id", session)?,
        Request::Store {
            session,
            name,
            value,
            labels,
            expires_at,
        } => {
            map.serialize_entry("session_id", session)?;
            map.serialize_entry("name", name)?;
            map.serialize_entry("value", &Base64(value.expose_secret()))?;
            if let Some(labels) = labels {
                map.serialize_entry("labels", labels)?;
            }
            match expires_at {
                ExpiryChange::Keep => {}
                ExpiryChange::Set(at) => map.serialize_entry("expires_at", &time::format(*at))?,
                ExpiryChange::Clear => map.serialize_entry("expires_at", &())?,
            }
        }
        Request::Retrieve {
            session,
            name,
            version,
        } => {
            map.serialize_entry("session_id", session)?;
            map.serialize_entry("name", name)?;
            if let Some(version) = version {
                map.serialize_entry("version", version)?;
            }
        }
        Request::Delete { session, name } | Request::History { session, name } => {
            map.serialize_entry("session_id", session)?;
            map.serialize_entry("name", name)?;
        }
        Request::List {
            session,
            label_filter,
            cursor,
            limit,
        } => {
            map.serialize_entry("session_id", session)?;
            if !label_filter.is_empty() {
                map.serialize_entry("label_filter", label_filter)?;
            }
            if let Some(cursor) = cursor {
                map.serialize_entry("cursor", cursor)?;
            }
            if let Some(limit) = limit {
                map.serialize_entry("limit", limit)?;
            }
        }
        Request::Rotate {
            session,
            name,
            value,
        } => {
            map.serialize_entry("session_id", session)?;
            map.serialize_entry("name", name)?;
            map.serialize_entry("value", &Base64(value.expose_secret()))?;
        }
        Request::Init {
            passphrase,
            work_factor,
        } => {
            map.serialize_entry("passphrase", passphrase.expose_secret())?;
            if let Some(work_factor) = work_factor {
                map.serialize_entry("work_factor", work_factor)?;
            }
        }
        Request::Unlock { passphrase } => {
            map.serialize_entry("passphrase", passphrase.expose_secret())?
        }
        Request::ChangePassphrase { old, new } => {
            map.serialize_entry("old_passphrase", old.expose_secret())?;
            map.serialize_entry("new_passphrase", new.expose_secret())?;
        }
    }
    SerializeMap::end(map)
}
