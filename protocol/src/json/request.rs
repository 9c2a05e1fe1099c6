//! Requests on the JSON wire (PROTOCOL.md §12.4, §12.7): one line → one [`Request`]. (The
//! reverse, for clients and tests, is [`encode_request`].)
//!
//! Decoding is two steps, both over the caller's buffer without copying a field: the line is
//! split into its `op` and its fields as borrowed `RawValue`s; then the op's fields are read
//! one by one, in the order of the [`Request`] variant, each into its validated type (the same
//! constructors the bincode decoder runs, so the codes are the same). What cannot be read as a
//! request of a known op is [`JsonError::Undecodable`] (close); a bad field of a known op is
//! [`JsonError::Rejected`] with its code (the connection goes on). Messages never quote input.

use super::time;
use crate::error::ErrorCode;
use crate::request::Request;
use crate::secret::{Passphrase, SecretValue};
use crate::types::{
    Cursor, ExpiryChange, Labels, Limits, SecretName, SessionId, ValidationError, WorkspaceId,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use zeroize::Zeroizing;

pub use super::encode::encode_request;

/// Why a line is not a request (PROTOCOL.md §12.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not a request of a known operation: answered `PROTOCOL_ERROR`, then the connection
    /// is closed, as for an undecodable bincode frame.
    Undecodable(&'static str),
    /// A request of a known operation with a bad field: answered with the field's code; the
    /// connection goes on.
    Rejected(ErrorCode, Cow<'static, str>),
}

impl JsonError {
    /// The code the answer carries.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Undecodable(_) => ErrorCode::ProtocolError,
            Self::Rejected(code, _) => *code,
        }
    }

    /// The answer's message (never quoting the input).
    pub fn message(&self) -> &str {
        match self {
            Self::Undecodable(message) => message,
            Self::Rejected(_, message) => message,
        }
    }

    /// True when the connection must be closed after the answer.
    pub fn closes(&self) -> bool {
        matches!(self, Self::Undecodable(_))
    }
}

impl From<ValidationError> for JsonError {
    fn from(err: ValidationError) -> Self {
        Self::Rejected(err.code, Cow::Borrowed(err.reason))
    }
}

const NOT_AN_OBJECT: &str = "the line is not one JSON object with plain field names \
     (PROTOCOL.md §12.2); closing the connection";
const BAD_OP: &str = "the line has no \"op\" naming a known operation (PROTOCOL.md §12.7); \
     closing the connection";

/// No operation has more fields than this; a line with more has fields it does not know, and
/// nothing past this many is kept.
const MAX_FIELDS: usize = 8;

/// A request line split into its `op` and its other fields, borrowed from the line.
#[derive(Default)]
struct Object<'a> {
    op: Option<&'a RawValue>,
    fields: Vec<(&'a str, &'a RawValue)>,
    duplicate: bool,
    too_many: bool,
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
        let mut object = Object::default();
        // A borrowed `&str` key: a key written with escapes is refused (§12.2.4).
        while let Some(key) = map.next_key::<&'de str>()? {
            let seen = key == "op" && object.op.is_some()
                || object.fields.iter().any(|(name, _)| *name == key);
            object.duplicate |= seen;
            if key == "op" && object.op.is_none() {
                object.op = Some(map.next_value()?);
            } else if object.fields.len() < MAX_FIELDS && !seen {
                object.fields.push((key, map.next_value()?));
            } else {
                object.too_many |= !seen;
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(object)
    }
}

/// The fields of one request, read by name.
struct Fields<'a> {
    op: &'static str,
    object: Object<'a>,
}

impl<'a> Fields<'a> {
    /// Refuses a field the op does not have, or one given twice.
    fn allow(&self, names: &[&str]) -> Result<(), JsonError> {
        let op = self.op;
        if self.object.duplicate {
            return Err(rejected(format!("{op} has a field given twice")));
        }
        let unknown = self.object.too_many
            || self
                .object
                .fields
                .iter()
                .any(|(name, _)| !names.contains(name));
        if unknown {
            return Err(rejected(format!(
                "{op} has a field it does not know: see PROTOCOL.md §12.7 for its fields"
            )));
        }
        Ok(())
    }

    /// The raw text of `name`, `None` when absent.
    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.object
            .fields
            .iter()
            .find(|(key, _)| *key == name)
            .map(|&(_, raw)| raw)
    }

    fn wrong(&self, name: &str, what: &str) -> JsonError {
        rejected(format!("the field '{name}' of {} must be {what}", self.op))
    }

    fn missing(&self, name: &str, what: &str) -> JsonError {
        rejected(format!("{} needs the field '{name}' ({what})", self.op))
    }

    /// An optional field: absent and `null` are `None`.
    fn optional<T: Deserialize<'a>>(&self, name: &str, what: &str) -> Result<Option<T>, JsonError> {
        match self.raw(name) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|_| self.wrong(name, what)),
        }
    }

    fn required<T: Deserialize<'a>>(&self, name: &str, what: &str) -> Result<T, JsonError> {
        self.optional(name, what)?
            .ok_or_else(|| self.missing(name, what))
    }

    fn session(&self) -> Result<SessionId, JsonError> {
        let id: String = self.required("session_id", "a string")?;
        Ok(SessionId::parse(id)?)
    }

    fn name(&self) -> Result<SecretName, JsonError> {
        let name: String = self.required("name", "a string")?;
        Ok(SecretName::new(name)?)
    }

    /// A passphrase, a JSON string (§12.5.4). Without escapes it is copied once from the
    /// line into the `Passphrase`; with escapes serde_json unescapes it through a scratch
    /// buffer of its own, which the agent's zeroizing allocator wipes when it is freed.
    fn passphrase(&self, name: &str) -> Result<Passphrase, JsonError> {
        let text: String = self.required(name, "a string")?;
        Ok(Passphrase::from_string(text))
    }

    /// A secret value: base64 in a JSON string without escapes (§12.5.3), decoded straight
    /// from the line into a wiped buffer.
    fn value(&self, name: &str) -> Result<SecretValue, JsonError> {
        const WHAT: &str = "base64 (standard alphabet, padded) in a string without escapes";
        let raw = self.raw(name).ok_or_else(|| self.missing(name, WHAT))?;
        let text = raw.get().as_bytes();
        let inner = text
            .strip_prefix(b"\"")
            .and_then(|t| t.strip_suffix(b"\""))
            .filter(|t| !t.contains(&b'\\'))
            .ok_or_else(|| self.wrong(name, WHAT))?;
        let mut decoded = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(inner.len())]);
        let len = STANDARD
            .decode_slice(inner, &mut decoded)
            .map_err(|_| self.wrong(name, WHAT))?;
        Ok(SecretValue::from_slice(&decoded[..len]))
    }

    fn labels(&self, name: &str) -> Result<Option<Labels>, JsonError> {
        let what = "an object of strings";
        let Some(raw) = self.raw(name).filter(|raw| raw.get() != "null") else {
            return Ok(None);
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match BoundedLabels::deserialize(&mut de) {
            Ok(BoundedLabels(Some(map))) => Ok(Some(Labels::new(map)?)),
            Ok(BoundedLabels(None)) => Err(JsonError::Rejected(
                ErrorCode::CapacityExceeded,
                Cow::Borrowed("a secret has at most 64 labels"),
            )),
            Err(_) => Err(self.wrong(name, what)),
        }
    }

    /// STORE's `expires_at` (§12.7.5): absent keeps, `null` clears, a time sets.
    fn expiry(&self) -> Result<ExpiryChange, JsonError> {
        let what = "an RFC 3339 time or null";
        match self.raw("expires_at") {
            None => Ok(ExpiryChange::Keep),
            Some(raw) if raw.get() == "null" => Ok(ExpiryChange::Clear),
            Some(raw) => serde_json::from_str::<&str>(raw.get())
                .ok()
                .and_then(time::parse)
                .map(ExpiryChange::Set)
                .ok_or_else(|| self.wrong("expires_at", what)),
        }
    }
}

fn rejected(message: String) -> JsonError {
    JsonError::Rejected(ErrorCode::InvalidRequest, Cow::Owned(message))
}

/// A label map that stops growing past the label limit: `None` once it is passed, so an
/// object of a hundred thousand pairs costs no more than sixty-five.
struct BoundedLabels(Option<BTreeMap<String, String>>);

impl<'de> Deserialize<'de> for BoundedLabels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelVisitor;
        impl<'de> Visitor<'de> for LabelVisitor {
            type Value = BoundedLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BoundedLabels, A::Error> {
                let most = Limits::AVP.max_labels_per_secret as usize;
                let mut labels = Some(BTreeMap::new());
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if let Some(pairs) = labels.as_mut() {
                        pairs.insert(key, value);
                        if pairs.len() > most {
                            labels = None;
                        }
                    }
                }
                Ok(BoundedLabels(labels))
            }
        }
        deserializer.deserialize_map(LabelVisitor)
    }
}

/// Reads one request line (without its `\n`; a trailing `\r` is JSON whitespace).
pub fn decode_request(line: &[u8]) -> Result<Request, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let object = Object::deserialize(&mut de).map_err(|_| JsonError::Undecodable(NOT_AN_OBJECT))?;
    de.end()
        .map_err(|_| JsonError::Undecodable(NOT_AN_OBJECT))?;
    let op = object
        .op
        .and_then(|raw| serde_json::from_str::<&str>(raw.get()).ok())
        .and_then(known_op)
        .ok_or(JsonError::Undecodable(BAD_OP))?;
    let f = Fields { op, object };
    let request = match op {
        "HELLO" => {
            f.allow(&["version"])?;
            Request::Hello {
                version: f.required("version", "an integer")?,
            }
        }
        "DISCOVER" => {
            f.allow(&[])?;
            Request::Discover
        }
        "AUTHENTICATE" => {
            f.allow(&["workspace", "agent_id", "ttl_seconds", "wait_for_unlock"])?;
            let workspace: String = f.required("workspace", "a string")?;
            let workspace = WorkspaceId::new(workspace)?;
            let agent_id = f.optional("agent_id", "a string")?.unwrap_or_default();
            let ttl_seconds = f.optional("ttl_seconds", "an integer")?;
            let wait_for_unlock = f.optional("wait_for_unlock", "a boolean")?.unwrap_or(false);
            Request::Authenticate {
                workspace,
                agent_id,
                ttl_seconds,
                wait_for_unlock,
            }
        }
        "TERMINATE" => {
            f.allow(&["session_id"])?;
            Request::Terminate {
                session: f.session()?,
            }
        }
        "STORE" => {
            f.allow(&["session_id", "name", "value", "labels", "expires_at"])?;
            Request::Store {
                session: f.session()?,
                name: f.name()?,
                value: f.value("value")?,
                labels: f.labels("labels")?,
                expires_at: f.expiry()?,
            }
        }
        "RETRIEVE" => {
            f.allow(&["session_id", "name", "version"])?;
            Request::Retrieve {
                session: f.session()?,
                name: f.name()?,
                version: f.optional("version", "an integer")?,
            }
        }
        "DELETE" => {
            f.allow(&["session_id", "name"])?;
            Request::Delete {
                session: f.session()?,
                name: f.name()?,
            }
        }
        "LIST" => {
            f.allow(&["session_id", "label_filter", "cursor", "limit"])?;
            Request::List {
                session: f.session()?,
                label_filter: f.labels("label_filter")?.unwrap_or_default(),
                cursor: f
                    .optional::<String>("cursor", "a string")?
                    .map(Cursor::from_wire),
                limit: f.optional("limit", "an integer")?,
            }
        }
        "ROTATE" => {
            f.allow(&["session_id", "name", "value"])?;
            Request::Rotate {
                session: f.session()?,
                name: f.name()?,
                value: f.value("value")?,
            }
        }
        "HISTORY" => {
            f.allow(&["session_id", "name"])?;
            Request::History {
                session: f.session()?,
                name: f.name()?,
            }
        }
        "INIT" => {
            f.allow(&["passphrase", "work_factor"])?;
            Request::Init {
                passphrase: f.passphrase("passphrase")?,
                work_factor: f.optional("work_factor", "an integer")?,
            }
        }
        "UNLOCK" => {
            f.allow(&["passphrase"])?;
            Request::Unlock {
                passphrase: f.passphrase("passphrase")?,
            }
        }
        "LOCK" => {
            f.allow(&[])?;
            Request::Lock
        }
        "STATUS" => {
            f.allow(&[])?;
            Request::Status
        }
        "CHANGE_PASSPHRASE" => {
            f.allow(&["old_passphrase", "new_passphrase"])?;
            Request::ChangePassphrase {
                old: f.passphrase("old_passphrase")?,
                new: f.passphrase("new_passphrase")?,
            }
        }
        "WORKSPACES" => {
            f.allow(&[])?;
            Request::Workspaces
        }
        "RETRIEVE_IN_CONNECTION_SESSION" => {
            f.allow(&["name", "version"])?;
            Request::RetrieveInConnectionSession {
                name: f.name()?,
                version: f.optional("version", "an integer")?,
            }
        }
        "TERMINATE_CONNECTION_SESSION" => {
            f.allow(&[])?;
            Request::TerminateConnectionSession
        }
        _ => return Err(JsonError::Undecodable(BAD_OP)),
    };
    Ok(request)
}

/// Every op of §12.7 this build knows, as `'static` names.
pub const OPS: [&str; 18] = [
    "HELLO",
    "DISCOVER",
    "AUTHENTICATE",
    "TERMINATE",
    "STORE",
    "RETRIEVE",
    "DELETE",
    "LIST",
    "ROTATE",
    "HISTORY",
    "INIT",
    "UNLOCK",
    "LOCK",
    "STATUS",
    "CHANGE_PASSPHRASE",
    "WORKSPACES",
    "RETRIEVE_IN_CONNECTION_SESSION",
    "TERMINATE_CONNECTION_SESSION",
];

fn known_op(op: &str) -> Option<&'static str> {
    OPS.into_iter().find(|known| *known == op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str) -> Result<Request, JsonError> {
        decode_request(line.as_bytes())
    }

    const SESSION: &str =
        "avp_sess_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_store_line_becomes_the_store_request() {
        let line = format!(
            r#"{{"op":"STORE","session_id":"{SESSION}","name":"db.password","value":"aHVudGVyMg==","labels":{{"env":"prod"}},"expires_at":"2030-03-17T17:46:40Z"}}"#
        );
        let Request::Store {
            session,
            name,
            value,
            labels,
            expires_at,
        } = decode(&line).unwrap()
        else {
            panic!("not a STORE");
        };
        assert_eq!(session.expose(), SESSION);
        assert_eq!(name.as_str(), "db.password");
        assert_eq!(value.expose_secret(), b"hunter2");
        assert_eq!(labels.unwrap().as_map()["env"], "prod");
        assert_eq!(
            expires_at,
            ExpiryChange::Set(crate::Timestamp::from_unix(1_900_000_000))
        );
    }

    #[test]
    fn store_expiry_absent_keeps_and_null_clears() {
        let base = format!(r#""op":"STORE","session_id":"{SESSION}","name":"k","value":"""#);
        let keep = decode(&format!("{{{base}}}")).unwrap();
        assert!(matches!(
            keep,
            Request::Store {
                expires_at: ExpiryChange::Keep,
                labels: None,
                ..
            }
        ));
        let clear = decode(&format!(r#"{{{base},"expires_at":null,"labels":{{}}}}"#)).unwrap();
        let Request::Store {
            expires_at, labels, ..
        } = clear
        else {
            panic!()
        };
        assert_eq!(expires_at, ExpiryChange::Clear);
        assert_eq!(labels, Some(Labels::empty()));
    }

    #[test]
    fn lines_that_are_no_request_close_the_connection() {
        for line in [
            "",
            "{",
            "[]",
            "{}",
            r#"{"op":"FETCH"}"#,
            r#"{"op":7}"#,
            r#"{"op":"DISCOVER"} {}"#,
            r#"{"op":"DISCOVER"}x"#,
            r#"{"o\u0070":"DISCOVER"}"#,
            "{\"op\":\"DISCOVER\",\"x\":\"\u{1}\"}",
        ] {
            let err = decode(line).unwrap_err();
            assert!(err.closes(), "{line:?}");
            assert_eq!(err.code(), ErrorCode::ProtocolError);
        }
        assert!(
            decode_request(b"{\"op\":\"DISCOVER\",\"x\":\"\xff\"}")
                .unwrap_err()
                .closes()
        );
    }

    #[test]
    fn bad_fields_of_a_known_op_are_rejected_with_their_code() {
        let cases = [
            (r#"{"op":"DISCOVER","x":1}"#, ErrorCode::InvalidRequest),
            (r#"{"op":"LOCK","op":"LOCK"}"#, ErrorCode::InvalidRequest),
            (r#"{"op":"HELLO"}"#, ErrorCode::InvalidRequest),
            (r#"{"op":"HELLO","version":-1}"#, ErrorCode::InvalidRequest),
            (r#"{"op":"HELLO","version":1.0}"#, ErrorCode::InvalidRequest),
            (
                r#"{"op":"HELLO","version":4294967296}"#,
                ErrorCode::InvalidRequest,
            ),
            (
                r#"{"op":"AUTHENTICATE","workspace":"../x"}"#,
                ErrorCode::InvalidWorkspace,
            ),
            (
                r#"{"op":"AUTHENTICATE","workspace":7}"#,
                ErrorCode::InvalidRequest,
            ),
            (
                r#"{"op":"TERMINATE","session_id":"nope"}"#,
                ErrorCode::SessionNotFound,
            ),
            (
                r#"{"op":"INIT","passphrase":null}"#,
                ErrorCode::InvalidRequest,
            ),
            (
                r#"{"op":"INIT","passphrase":"p","work_factor":256}"#,
                ErrorCode::InvalidRequest,
            ),
        ];
        for (line, code) in cases {
            let err = decode(line).unwrap_err();
            assert_eq!(err.code(), code, "{line}");
            assert!(!err.closes(), "{line}");
        }
        let name = format!(r#"{{"op":"DELETE","session_id":"{SESSION}","name":"1st"}}"#);
        assert_eq!(decode(&name).unwrap_err().code(), ErrorCode::InvalidName);
        for value in [r#""aHVudGVyMg""#, r#""a\/==""#, "7", r#""!!!!""#] {
            let line =
                format!(r#"{{"op":"ROTATE","session_id":"{SESSION}","name":"k","value":{value}}}"#);
            assert_eq!(
                decode(&line).unwrap_err().code(),
                ErrorCode::InvalidRequest,
                "{value}"
            );
        }
        let many: Vec<String> = (0..65).map(|i| format!(r#""k{i}":"v""#)).collect();
        let line = format!(
            r#"{{"op":"LIST","session_id":"{SESSION}","label_filter":{{{}}}}}"#,
            many.join(",")
        );
        assert_eq!(
            decode(&line).unwrap_err().code(),
            ErrorCode::CapacityExceeded
        );
    }

    #[test]
    fn messages_never_quote_the_input() {
        let marker = "MARKER5f3a";
        for line in [
            format!(r#"{{"op":"RETRIEVE","{marker}":1}}"#),
            format!(r#"{{"op":"{marker}"}}"#),
            format!(r#"{{"op":"HELLO","version":"{marker}"}}"#),
            format!(r#"{{"op":"AUTHENTICATE","workspace":"{marker}/"}}"#),
            format!(r#"{{"op":"STORE","session_id":"{SESSION}","name":"k","value":"{marker}"}}"#),
        ] {
            let err = decode(&line).unwrap_err();
            assert!(!err.message().contains(marker), "{line}: {}", err.message());
        }
    }

    #[test]
    fn escaped_passphrases_are_unescaped() {
        let Request::Unlock { passphrase } =
            decode(r#"{"op":"UNLOCK","passphrase":"a\"b\\c\u00e9"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(passphrase.expose_secret(), "a\"b\\cé");
    }
}
