//! Everything avp prints: JSON documents, tables, times, error lines, and secret bytes.
//!
//! Secret bytes are written straight to file descriptor 1 (not through std's buffered
//! stdout, whose buffer would keep a copy) from buffers sized exactly in advance and wiped
//! on drop.

use crate::fail::Failure;
use avp_client::{Labels, Timestamp};
use base64::Engine;
use nix::errno::Errno;
use serde_json::{Value, json};
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

/// RFC 3339 in UTC, e.g. `2030-01-31T12:00:00Z`.
pub fn rfc3339(time: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(time.unix())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| time.unix().to_string())
}

/// An optional time as JSON: a string or `null`.
pub fn rfc3339_json(time: Option<Timestamp>) -> Value {
    time.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// Labels as a JSON object.
pub fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Labels as `k=v,k2=v2`, or `-` for none.
pub fn labels_text(labels: &Labels) -> String {
    if labels.is_empty() {
        return "-".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes `text` to stdout.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|err| Failure::io("cannot write to standard output", err))
}

/// Prints one JSON document (without secrets) on its own line.
pub fn print_json(doc: &Value) -> Result<(), Failure> {
    print(&format!("{doc}\n"))
}

/// Prints rows as aligned columns under a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if i != last {
                // Padded by hand: `format!`'s width is limited to u16, and a LABELS cell
                // within the limits (64 labels of 1,152 bytes) is wider than that.
                let pad = width.saturating_sub(cell.chars().count()) + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    print(&text)
}

/// Writes secret bytes straight to file descriptor 1.
pub fn write_secret(bytes: &[u8]) -> Result<(), Failure> {
    let stdout = io::stdout();
    stdout
        .lock()
        .flush()
        .map_err(|err| Failure::io("cannot write to standard output", err))?;
    let mut rest = bytes;
    while !rest.is_empty() {
        match nix::unistd::write(stdout.as_fd(), rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(Failure::io("cannot write to standard output", errno.into())),
        }
    }
    Ok(())
}

/// True when stdout is a terminal (then `get` adds a newline).
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Counts the bytes written to it, to size a secret-bearing buffer exactly.
#[derive(Debug, Default)]
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders secret-bearing output into a wiped buffer of exactly the right size: `render`
/// runs once to count and once to write, so the buffer never reallocates.
pub fn render_secret(
    render: impl Fn(&mut dyn Write) -> io::Result<()>,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut counter = Counter::default();
    render(&mut counter).map_err(|err| Failure::io("cannot format output", err))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(counter.0));
    render(&mut *buf).map_err(|err| Failure::io("cannot format output", err))?;
    Ok(buf)
}

/// Writes `text` as a JSON string, escaped per RFC 8259 (control characters as `\uXXXX`).
pub fn write_json_string(out: &mut dyn Write, text: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f | 0x7f => None,
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        match escape {
            Some(seq) => out.write_all(seq)?,
            None => write!(out, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

/// A value as JSON: its text when it is UTF-8 (`"encoding": "utf8"`), else base64
/// (`"encoding": "base64"`). Writes `"value":…,"encoding":…`.
pub fn write_value_fields(out: &mut dyn Write, value: &[u8]) -> io::Result<()> {
    out.write_all(b"\"value\":")?;
    match std::str::from_utf8(value) {
        Ok(text) => {
            write_json_string(out, text)?;
            out.write_all(b",\"encoding\":\"utf8\"")
        }
        Err(_) => {
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
            write_json_string(out, &encoded)?;
            out.write_all(b",\"encoding\":\"base64\"")
        }
    }
}

/// Prints a failure on stderr: `avp: problem (CODE) — next step`, or under `--json`
/// `{"error":{"code":…,"message":…}}`.
pub fn print_failure(failure: &Failure, json: bool) {
    let Some(code) = failure.code() else {
        return;
    };
    let text = if json {
        let (problem, next) = failure.problem_and_next_step();
        let message = match next {
            Some(next) => format!("{problem} — {next}"),
            None => problem,
        };
        json!({"error": {"code": code, "message": message}}).to_string()
    } else {
        format!("avp: {}", failure.line())
    };
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Prints a warning on stderr.
pub fn warn(text: &str) {
    let _ = writeln!(io::stderr().lock(), "avp: warning: {text}");
}

/// Prints a note for people on stderr (keeps stdout for data).
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_string(text: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, text).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_strings_parse_back_exactly() {
        for text in [
            "",
            "plain",
            "q\"b\\s",
            "nl\ncr\rtab\t",
            "\u{0}\u{1f}\u{7f}",
            "é名",
        ] {
            let encoded = json_string(text);
            let decoded: String = serde_json::from_str(&encoded).unwrap();
            assert_eq!(decoded, text);
        }
    }

    #[test]
    fn values_carry_their_encoding() {
        let mut out = Vec::new();
        out.push(b'{');
        write_value_fields(&mut out, b"\xff\x00a").unwrap();
        out.push(b'}');
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["encoding"], "base64");
        assert_eq!(doc["value"], "/wBh");
    }

    #[test]
    fn render_sizes_the_buffer_exactly() {
        let buf = render_secret(|out| out.write_all(b"hello world")).unwrap();
        assert_eq!(&buf[..], b"hello world");
        assert_eq!(buf.capacity(), buf.len());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(Timestamp::from_unix(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_json(None), Value::Null);
    }
}
