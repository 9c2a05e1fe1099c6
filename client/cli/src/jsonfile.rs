//! The JSON import/export format: one object mapping names to values. A value is a string
//! (its UTF-8 bytes) or `{"value": "…", "encoding": "utf8" | "base64"}`; export writes the
//! object form only for values that are not UTF-8.
//!
//! Errors name the line and never quote the file: serde's "invalid type" messages can
//! contain the offending value, so they are replaced by a fixed explanation.

use crate::output::write_json_string;
use avp_client::{ErrorCode, SecretName, SecretValue};
use base64::Engine;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use std::fmt;
use std::io::{self, Write};
use zeroize::Zeroizing;

/// Why a file is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// The line where the problem was found (1-based).
    pub line: usize,
    /// The AVP code for the problem.
    pub code: ErrorCode,
    /// What is wrong (never the file's contents).
    pub reason: String,
}

/// Marks errors raised by this module, so they can be told from serde's own.
const TAG: &str = "avp-import:";

fn custom<E: de::Error>(code: ErrorCode, reason: &str) -> E {
    E::custom(format_args!("{TAG}{code}:{reason}"))
}

const SHAPE: &str =
    "a value must be a string or {\"value\": \"…\", \"encoding\": \"utf8\" or \"base64\"}";

struct FileVisitor {
    max: usize,
}

impl<'de> Visitor<'de> for FileVisitor {
    type Value = Vec<(SecretName, SecretValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping secret names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let name = SecretName::new(key).map_err(|_| {
                custom::<A::Error>(ErrorCode::InvalidName, "invalid secret name: use an ASCII letter, then letters, digits, '_', '.' or '-'")
            })?;
            let value = map.next_value_seed(ValueSeed { max: self.max })?;
            entries.push((name, value));
        }
        Ok(entries)
    }
}

struct ValueSeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = SecretValue;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<SecretValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed {
    fn checked<E: de::Error>(&self, value: SecretValue) -> Result<SecretValue, E> {
        if value.len() > self.max {
            return Err(custom(
                ErrorCode::ValueTooLarge,
                "value larger than the limit",
            ));
        }
        Ok(value)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = SecretValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHAPE)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretValue, E> {
        self.checked(SecretValue::from_slice(text.as_bytes()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<SecretValue, E> {
        self.checked(SecretValue::from_vec(text.into_bytes()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretValue, A::Error> {
        let mut value: Option<SecretValue> = None;
        let mut base64 = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "value" => value = Some(map.next_value_seed(RawText)?),
                "encoding" => {
                    base64 = match map.next_value::<String>()?.as_str() {
                        "utf8" => false,
                        "base64" => true,
                        _ => {
                            return Err(custom(
                                ErrorCode::InvalidRequest,
                                "encoding must be \"utf8\" or \"base64\"",
                            ));
                        }
                    }
                }
                _ => return Err(custom(ErrorCode::InvalidRequest, SHAPE)),
            }
        }
        let Some(value) = value else {
            return Err(custom(ErrorCode::InvalidRequest, SHAPE));
        };
        if !base64 {
            return self.checked(value);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.expose_secret())
            .map(Zeroizing::new)
            .map_err(|_| custom(ErrorCode::InvalidRequest, "value is not valid base64"))?;
        self.checked(SecretValue::from_slice(&decoded))
    }
}

/// A string's bytes as a secret value, with no length check (base64 text is longer than
/// the value it encodes).
struct RawText;

impl<'de> DeserializeSeed<'de> for RawText {
    type Value = SecretValue;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<SecretValue, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for RawText {
    type Value = SecretValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretValue, E> {
        Ok(SecretValue::from_slice(text.as_bytes()))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<SecretValue, E> {
        Ok(SecretValue::from_vec(text.into_bytes()))
    }
}

/// Parses a whole file; the first bad entry fails it all, naming its line.
pub fn parse(input: &[u8], max: usize) -> Result<Vec<(SecretName, SecretValue)>, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let entries = de::Deserializer::deserialize_map(&mut deserializer, FileVisitor { max })
        .and_then(|entries| deserializer.end().map(|()| entries))
        .map_err(convert)?;
    Ok(entries)
}

fn convert(err: serde_json::Error) -> JsonError {
    let text = err.to_string();
    // serde_json appends " at line L column C"; keep only the message.
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    let (code, reason) = match message.strip_prefix(TAG).and_then(|m| m.split_once(':')) {
        Some((code, reason)) => (
            code.parse().unwrap_or(ErrorCode::InvalidRequest),
            reason.to_owned(),
        ),
        None if err.is_data() => (ErrorCode::InvalidRequest, SHAPE.to_owned()),
        None => (
            ErrorCode::InvalidRequest,
            format!("invalid JSON: {message}"),
        ),
    };
    JsonError {
        line: err.line().max(1),
        code,
        reason,
    }
}

/// Writes the whole export object, one entry per line.
pub fn write_all(out: &mut dyn Write, entries: &[(SecretName, SecretValue)]) -> io::Result<()> {
    if entries.is_empty() {
        return out.write_all(b"{}\n");
    }
    out.write_all(b"{\n")?;
    for (i, (name, value)) in entries.iter().enumerate() {
        out.write_all(b"  ")?;
        write_json_string(out, name.as_str())?;
        out.write_all(b": ")?;
        match std::str::from_utf8(value.expose_secret()) {
            Ok(text) => write_json_string(out, text)?,
            Err(_) => {
                let encoded = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(value.expose_secret()),
                );
                out.write_all(b"{\"value\": ")?;
                write_json_string(out, &encoded)?;
                out.write_all(b", \"encoding\": \"base64\"}")?;
            }
        }
        out.write_all(if i + 1 < entries.len() { b",\n" } else { b"\n" })?;
    }
    out.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<(String, Vec<u8>)> {
        parse(text.as_bytes(), 100)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.expose_secret().to_vec()))
            .collect()
    }

    #[test]
    fn strings_and_encoded_objects_are_accepted() {
        let got = parse_ok(
            r#"{"A": "x\ny", "B": {"value": "/wA=", "encoding": "base64"}, "C": {"value": "t"}}"#,
        );
        assert_eq!(
            got,
            [
                ("A".into(), b"x\ny".to_vec()),
                ("B".into(), b"\xff\x00".to_vec()),
                ("C".into(), b"t".to_vec())
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_never_quote_values() {
        let err = parse(b"{\n \"A\": \"1\",\n \"9bad\": \"2\"\n}", 100).unwrap_err();
        assert_eq!((err.line, err.code), (3, ErrorCode::InvalidName));
        let err = parse(b"{\n\"A\": \"1\",\n\"B\": 123456\n}", 100).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(!err.reason.contains("123456"), "{}", err.reason);
        let err = parse(b"{\"A\": \"1\",\n\n\"B\" \"2\"}", 100).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.starts_with("invalid JSON"), "{}", err.reason);
        let err = parse(
            b"{\"A\": {\"value\": \"!!\", \"encoding\": \"base64\"}}",
            100,
        )
        .unwrap_err();
        assert_eq!(err.reason, "value is not valid base64");
        let err = parse(b"{\"A\": \"12345\"}", 4).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValueTooLarge);
        assert!(parse(b"[]", 100).is_err());
        assert!(parse(b"{} trailing", 100).is_err());
    }

    #[test]
    fn written_files_read_back_exactly() {
        let entries = vec![
            (
                SecretName::new("A").unwrap(),
                SecretValue::from_slice(b"q\"uote\n#="),
            ),
            (
                SecretName::new("B").unwrap(),
                SecretValue::from_slice(b"\xff\xfe"),
            ),
            (SecretName::new("C").unwrap(), SecretValue::from_slice(b"")),
        ];
        let mut file = Vec::new();
        write_all(&mut file, &entries).unwrap();
        let back = parse(&file, 100).unwrap();
        assert_eq!(back, entries);
    }
}
