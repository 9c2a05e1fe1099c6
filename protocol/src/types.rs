//! Validated newtypes. A value of these types has passed the rules of PROTOCOL.md §5: it is built by
//! `new`/`parse` or by deserialization, both of which validate, so code that holds one never
//! re-checks it. Validation errors never quote the rejected input.

use crate::error::ErrorCode;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// Why a value was rejected: the AVP code and a fixed reason (never the input itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code})")]
pub struct ValidationError {
    /// The code the agent answers with.
    pub code: ErrorCode,
    /// A fixed, input-free explanation.
    pub reason: &'static str,
}

impl ValidationError {
    const fn new(code: ErrorCode, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// The serde error carrying this rejection. The codec recognises the `CODE: reason`
    /// form and turns it back into an answer with that code instead of a protocol error.
    pub(crate) fn into_serde<E: serde::de::Error>(self) -> E {
        E::custom(format_args!("{}: {}", self.code, self.reason))
    }
}

/// Longest secret name and workspace id, in bytes.
pub const MAX_ID_LEN: usize = 255;

fn deserialize_validated<'de, D, T>(
    deserializer: D,
    parse: impl FnOnce(String) -> Result<T, ValidationError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = String::deserialize(deserializer)?;
    parse(raw).map_err(ValidationError::into_serde)
}

/// A secret's name: `^[A-Za-z][A-Za-z0-9_.-]{0,254}$`, ASCII only, whole string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    /// Validates `name`; the error is `INVALID_NAME`.
    pub fn new(name: impl Into<String>) -> Result<Self, ValidationError> {
        let name = name.into();
        let bytes = name.as_bytes();
        let invalid = |reason| Err(ValidationError::new(ErrorCode::InvalidName, reason));
        if bytes.is_empty() {
            return invalid("a secret name must not be empty");
        }
        if bytes.len() > MAX_ID_LEN {
            return invalid("a secret name is at most 255 characters");
        }
        if !bytes[0].is_ascii_alphabetic() {
            return invalid("a secret name must start with an ASCII letter");
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return invalid(
                "a secret name may contain only ASCII letters, digits, '_', '.' and '-'",
            );
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SecretName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for SecretName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_validated(deserializer, Self::new)
    }
}

/// A workspace id: `^[A-Za-z0-9][A-Za-z0-9_./-]{0,254}$` with no `..` segment, no empty
/// segment and no trailing `/`. A `/` carries no hierarchy: `team` and `team/job` are
/// unrelated workspaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// The workspace used when none is named.
    pub const DEFAULT: &'static str = "default";

    /// Validates `id`; the error is `INVALID_WORKSPACE`.
    pub fn new(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        let bytes = id.as_bytes();
        let invalid = |reason| Err(ValidationError::new(ErrorCode::InvalidWorkspace, reason));
        if bytes.is_empty() {
            return invalid("a workspace id must not be empty");
        }
        if bytes.len() > MAX_ID_LEN {
            return invalid("a workspace id is at most 255 characters");
        }
        if !bytes[0].is_ascii_alphanumeric() {
            return invalid("a workspace id must start with an ASCII letter or digit");
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        {
            return invalid(
                "a workspace id may contain only ASCII letters, digits, '_', '.', '/' and '-'",
            );
        }
        if id.split('/').any(|segment| segment.is_empty()) {
            return invalid("a workspace id has no empty segment and no trailing '/'");
        }
        if id.split('/').any(|segment| segment == "..") {
            return invalid("a workspace id has no '..' segment");
        }
        Ok(Self(id))
    }

    /// The `default` workspace.
    pub fn default_workspace() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for WorkspaceId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for WorkspaceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_validated(deserializer, Self::new)
    }
}

/// A session id: `avp_sess_` followed by 64 lowercase hex digits (256 random bits from the
/// OS). It is a bearer token, so equality is constant-time and `Debug` shows only a prefix.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// The fixed prefix of every session id.
    pub const PREFIX: &'static str = "avp_sess_";
    const RANDOM_BYTES: usize = 32;
    const LEN: usize = Self::PREFIX.len() + 2 * Self::RANDOM_BYTES;

    /// A fresh id from the operating system's random generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut random = [0u8; Self::RANDOM_BYTES];
        getrandom::fill(&mut random)?;
        let mut id = String::with_capacity(Self::LEN);
        id.push_str(Self::PREFIX);
        for byte in random {
            id.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            id.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        Ok(Self(id))
    }

    /// Validates the shape of an id received from a peer; the error is `SESSION_NOT_FOUND`,
    /// because a malformed id names no session.
    pub fn parse(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        let well_formed = id.len() == Self::LEN
            && id.starts_with(Self::PREFIX)
            && id[Self::PREFIX.len()..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if well_formed {
            Ok(Self(id))
        } else {
            Err(ValidationError::new(
                ErrorCode::SessionNotFound,
                "a session id is 'avp_sess_' followed by 64 hex digits",
            ))
        }
    }

    /// The id as text, e.g. to hand to another process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SessionId {}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..Self::PREFIX.len() + 4).unwrap_or(Self::PREFIX);
        write!(f, "SessionId({shown}…)")
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_validated(deserializer, Self::parse)
    }
}

/// The limits of PROTOCOL.md §10, reported by DISCOVER and enforced by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest secret value in bytes.
    pub max_secret_value_length: u32,
    /// Longest secret name in bytes.
    pub max_secret_name_length: u32,
    /// Longest workspace id in bytes.
    pub max_workspace_id_length: u32,
    /// Most labels on one secret.
    pub max_labels_per_secret: u32,
    /// Longest label key in bytes.
    pub max_label_key_length: u32,
    /// Longest label value in bytes.
    pub max_label_value_length: u32,
    /// Most live secrets in one workspace.
    pub max_secrets_per_workspace: u32,
    /// Longest session lifetime; longer requests are clamped to it.
    pub max_session_ttl_seconds: u64,
    /// Lifetime of a session that asks for none.
    pub default_session_ttl_seconds: u64,
    /// Largest LIST page.
    pub max_list_limit: u32,
    /// LIST page size when none is asked for.
    pub default_list_limit: u32,
}

impl Limits {
    /// The limits of PROTOCOL.md §10.
    pub const AVP: Limits = Limits {
        max_secret_value_length: 65_536,
        max_secret_name_length: MAX_ID_LEN as u32,
        max_workspace_id_length: MAX_ID_LEN as u32,
        max_labels_per_secret: 64,
        max_label_key_length: 128,
        max_label_value_length: 1_024,
        max_secrets_per_workspace: 10_000,
        max_session_ttl_seconds: 86_400,
        default_session_ttl_seconds: 3_600,
        max_list_limit: 1_000,
        default_list_limit: 100,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::AVP
    }
}

/// A secret's labels: at most 64 pairs, keys 1–128 bytes, values at most 1,024 bytes.
/// Too many pairs is `CAPACITY_EXCEEDED`; an empty or oversized key or value is
/// `INVALID_REQUEST`. Kept sorted so LIST filters and output are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Validates a map of labels against [`Limits::AVP`].
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, ValidationError> {
        let limits = Limits::AVP;
        if map.len() > limits.max_labels_per_secret as usize {
            return Err(ValidationError::new(
                ErrorCode::CapacityExceeded,
                "a secret has at most 64 labels",
            ));
        }
        for (key, value) in &map {
            if key.is_empty() || key.len() > limits.max_label_key_length as usize {
                return Err(ValidationError::new(
                    ErrorCode::InvalidRequest,
                    "a label key is 1 to 128 bytes",
                ));
            }
            if value.len() > limits.max_label_value_length as usize {
                return Err(ValidationError::new(
                    ErrorCode::InvalidRequest,
                    "a label value is at most 1024 bytes",
                ));
            }
        }
        Ok(Self(map))
    }

    /// No labels.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The pairs, sorted by key.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every pair of `filter` is present here with the same value.
    pub fn matches(&self, filter: &Labels) -> bool {
        filter
            .0
            .iter()
            .all(|(key, value)| self.0.get(key) == Some(value))
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Self::new(map).map_err(ValidationError::into_serde)
    }
}

/// A point in time: whole seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The given number of seconds since the epoch.
    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Self(seconds)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// This time plus `seconds`, saturating.
    pub fn plus_seconds(self, seconds: u64) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX)),
        )
    }
}

/// What a STORE does to a secret's expiry.
///
/// The variants are in this order on purpose: bincode writes the variant index, so `Keep`
/// is the byte 0 and `Set(t)` the byte 1 then `t` — exactly the bytes of the
/// `Option<Timestamp>` (None / Some) this field was in protocol version 1 before `Clear`
/// (the byte 2) was added. Old clients keep working unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpiryChange {
    /// Keep the existing expiry (a new secret gets none).
    #[default]
    Keep,
    /// Expire at this time, which must be in the future.
    Set(Timestamp),
    /// Remove the expiry: the secret lives until deleted.
    Clear,
}

impl ExpiryChange {
    /// The expiry once this change is applied to a secret expiring at `current`.
    pub fn apply(self, current: Option<Timestamp>) -> Option<Timestamp> {
        match self {
            Self::Keep => current,
            Self::Set(at) => Some(at),
            Self::Clear => None,
        }
    }

    /// True when this sets an expiry at or before `now`: such a secret could never be read
    /// (and would take its whole history with it), so it is refused.
    pub fn is_past(self, now: Timestamp) -> bool {
        matches!(self, Self::Set(at) if at <= now)
    }
}

/// An opaque LIST position. avp's pagination is keyset: the cursor names the last secret of
/// the previous page, so it stays valid under concurrent inserts and deletes. Its contents
/// are not part of the protocol; clients only pass back what they were given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    const TAG: &'static str = "c1.";

    /// The cursor that resumes a listing after `name`.
    pub fn after(name: &SecretName) -> Self {
        let mut encoded = String::with_capacity(Self::TAG.len() + 2 * name.as_str().len());
        encoded.push_str(Self::TAG);
        for byte in name.as_str().bytes() {
            encoded.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            encoded.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        Self(encoded)
    }

    /// A cursor exactly as a peer sent it; checked only by [`Cursor::position`].
    pub fn from_wire(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The cursor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name after which the next page starts; `INVALID_REQUEST` when malformed.
    pub fn position(&self) -> Result<SecretName, ValidationError> {
        let malformed = ValidationError::new(ErrorCode::InvalidRequest, "malformed list cursor");
        let hex = self.0.strip_prefix(Self::TAG).ok_or(malformed)?;
        if hex.len() % 2 != 0 || hex.len() > 2 * MAX_ID_LEN {
            return Err(malformed);
        }
        let bytes = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let text = std::str::from_utf8(pair).map_err(|_| malformed)?;
                u8::from_str_radix(text, 16).map_err(|_| malformed)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let name = String::from_utf8(bytes).map_err(|_| malformed)?;
        SecretName::new(name).map_err(|_| malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID_NAMES: &[&str] = &["api_key", "API_KEY", "key.name", "key-name", "a"];
    const INVALID_NAMES: &[&str] = &[
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
        "ｋｅｙ",
        "ＡＰＩ",
    ];

    #[test]
    fn valid_names_are_accepted() {
        for name in VALID_NAMES {
            assert_eq!(SecretName::new(*name).unwrap().as_str(), *name);
        }
        assert!(SecretName::new("a".repeat(255)).is_ok());
    }

    #[test]
    fn invalid_names_are_rejected_with_invalid_name() {
        for name in INVALID_NAMES {
            let err = SecretName::new(*name).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidName, "{name:?}");
        }
        let err = SecretName::new("a".repeat(256)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidName);
    }

    #[test]
    fn validation_errors_never_quote_the_input() {
        let marker = "MARKER\u{1F600}";
        let err = SecretName::new(marker).unwrap_err();
        assert!(!err.to_string().contains("MARKER"));
        let err = WorkspaceId::new(marker).unwrap_err();
        assert!(!err.to_string().contains("MARKER"));
    }

    #[test]
    fn workspace_vectors() {
        for ws in ["default", "my-project", "project/sub", "123", "a.b_c/d-e"] {
            assert_eq!(WorkspaceId::new(ws).unwrap().as_str(), ws);
        }
        assert!(WorkspaceId::new("w".repeat(255)).is_ok());
        for ws in [
            "", "/x", "a/", "a//b", "a/../b", "..", "a/..", "a b", "ws\n", "é",
        ] {
            let err = WorkspaceId::new(ws).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidWorkspace, "{ws:?}");
        }
        assert!(WorkspaceId::new("w".repeat(256)).is_err());
    }

    #[test]
    fn session_ids_are_random_prefixed_and_hex() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("avp_sess_"));
        assert_eq!(a.expose().len(), 9 + 64);
        assert_eq!(SessionId::parse(a.expose()).unwrap(), a);
        assert!(SessionId::parse("avp_sess_xyz").is_err());
        assert!(SessionId::parse(a.expose().to_uppercase()).is_err());
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.expose()[20..]), "Debug leaks the token");
    }

    #[test]
    fn labels_enforce_counts_and_sizes() {
        let many: BTreeMap<_, _> = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(
            Labels::new(many).unwrap_err().code,
            ErrorCode::CapacityExceeded
        );
        let long_key = BTreeMap::from([("k".repeat(129), String::new())]);
        assert_eq!(
            Labels::new(long_key).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let long_value = BTreeMap::from([("k".into(), "v".repeat(1025))]);
        assert_eq!(
            Labels::new(long_value).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let ok = BTreeMap::from([("k".repeat(128), "v".repeat(1024))]);
        assert!(Labels::new(ok).is_ok());
    }

    #[test]
    fn label_filter_requires_every_pair() {
        let labels = Labels::new(BTreeMap::from([
            ("env".into(), "prod".into()),
            ("team".into(), "a".into()),
        ]))
        .unwrap();
        let env = Labels::new(BTreeMap::from([("env".into(), "prod".into())])).unwrap();
        let other = Labels::new(BTreeMap::from([("env".into(), "dev".into())])).unwrap();
        assert!(labels.matches(&env));
        assert!(labels.matches(&Labels::empty()));
        assert!(!labels.matches(&other));
    }

    #[test]
    fn expiry_changes_keep_set_and_clear() {
        let (old, new) = (Timestamp::from_unix(10), Timestamp::from_unix(20));
        assert_eq!(ExpiryChange::Keep.apply(Some(old)), Some(old));
        assert_eq!(ExpiryChange::Keep.apply(None), None);
        assert_eq!(ExpiryChange::Set(new).apply(Some(old)), Some(new));
        assert_eq!(ExpiryChange::Clear.apply(Some(old)), None);
        assert!(ExpiryChange::Set(old).is_past(old));
        assert!(!ExpiryChange::Set(new).is_past(old));
        assert!(!ExpiryChange::Keep.is_past(old) && !ExpiryChange::Clear.is_past(old));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let name = SecretName::new("db.password-2").unwrap();
        assert_eq!(Cursor::after(&name).position().unwrap(), name);
        for raw in ["", "c1.", "c1.zz", "c1.6", "x1.61", "c1.2f"] {
            assert!(Cursor::from_wire(raw).position().is_err(), "{raw:?}");
        }
    }
}
