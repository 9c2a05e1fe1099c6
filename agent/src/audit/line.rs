//! One audit line, written straight into the pending buffer.
//!
//! Why by hand: serializing the line with serde_json (an escaping scan over every field) and
//! formatting its time into a fresh `String` cost ~0.3 µs of a ~8 µs RETRIEVE round trip
//! (`avp-bench --only retrieve` with and without the audit line: 1.28–1.33× the echo
//! against 1.25–1.26×). The fields are few and fixed: operation and outcome are constants,
//! secret names and workspace ids have a charset JSON never escapes (the protocol types
//! check it), numbers are numbers; only the executable's path is free text, and it still
//! goes through serde_json. The time's date and clock part is formatted once a second.

use avp_protocol::{SecretName, WorkspaceId};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// One access decision, or one change of the vault's state.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The operation, e.g. `RETRIEVE`.
    pub operation: &'a str,
    /// The workspace acted on, if any.
    pub workspace: Option<&'a WorkspaceId>,
    /// The secret acted on, if any.
    pub name: Option<&'a SecretName>,
    /// `OK` or the AVP error code.
    pub outcome: &'a str,
    /// The peer's uid.
    pub uid: u32,
    /// The peer's pid.
    pub pid: Option<i32>,
    /// The peer's executable.
    pub exe: Option<&'a std::path::Path>,
    /// Why the vault changed state, on the agent's own `VAULT_LOCKED`/`VAULT_UNLOCKED` lines
    /// (absent on access decisions, whose lines keep their shape).
    pub reason: Option<&'a str>,
    /// `true` on a read answered from the agent's last-known state while its storage was
    /// unreachable (Redis away); absent otherwise.
    pub stale: bool,
}

/// The `YYYY-MM-DDTHH:MM:SS` of the current second, formatted once.
#[derive(Debug, Default)]
pub struct Clock {
    second: Option<u64>,
    text: [u8; 19],
}

impl Clock {
    /// `now` as RFC 3339 UTC with nanoseconds: `2026-12-03T12:57:08.052712345Z`.
    fn write(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs();
        if self.second != Some(second) {
            let at = i64::try_from(second)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let mut text = [0u8; 19];
            digits(&mut text[0..4], u32::try_from(at.year()).unwrap_or(0));
            text[4] = b'-';
            digits(&mut text[5..7], u32::from(u8::from(at.month())));
            text[7] = b'-';
            digits(&mut text[8..10], u32::from(at.day()));
            text[10] = b'T';
            digits(&mut text[11..13], u32::from(at.hour()));
            text[13] = b':';
            digits(&mut text[14..16], u32::from(at.minute()));
            text[16] = b':';
            digits(&mut text[17..19], u32::from(at.second()));
            self.text = text;
            self.second = Some(second);
        }
        out.extend_from_slice(&self.text);
        out.push(b'.');
        let mut nanos = [0u8; 9];
        digits(&mut nanos, since.subsec_nanos());
        out.extend_from_slice(&nanos);
        out.push(b'Z');
    }
}

/// `value` in decimal, zero-padded to fill `out`.
fn digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Appends `event`'s line (with its newline), timed `now`.
pub fn write(out: &mut Vec<u8>, clock: &mut Clock, event: &Event<'_>, now: SystemTime) {
    let quoted = |out: &mut Vec<u8>, text: Option<&str>| match text {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"time\":\"");
    clock.write(out, now);
    out.extend_from_slice(b"\",\"operation\":");
    quoted(out, Some(event.operation));
    out.extend_from_slice(b",\"workspace\":");
    quoted(out, event.workspace.map(WorkspaceId::as_str));
    out.extend_from_slice(b",\"name\":");
    quoted(out, event.name.map(SecretName::as_str));
    out.extend_from_slice(b",\"outcome\":");
    quoted(out, Some(event.outcome));
    out.extend_from_slice(b",\"uid\":");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", event.uid);
    out.extend_from_slice(b",\"pid\":");
    match event.pid {
        Some(pid) => {
            let _ = write!(out, "{pid}");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"exe\":");
    match event.exe {
        // Not UTF-8: as `Path::display` shows it (U+FFFD for the bad bytes).
        Some(exe) => {
            if serde_json::to_writer(&mut *out, &exe.to_string_lossy()).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        None => out.extend_from_slice(b"null"),
    }
    if let Some(reason) = event.reason {
        out.extend_from_slice(b",\"reason\":");
        quoted(out, Some(reason));
    }
    if event.stale {
        out.extend_from_slice(b",\"stale\":true");
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_time_is_rfc3339_utc_and_each_second_is_formatted_anew() {
        let mut clock = Clock::default();
        let mut out = Vec::new();
        let at = UNIX_EPOCH + Duration::new(1_796_302_628, 52_712_345);
        clock.write(&mut out, at);
        assert_eq!(out, b"2026-12-03T12:57:08.052712345Z");
        out.clear();
        clock.write(&mut out, at + Duration::from_millis(1_500));
        assert_eq!(out, b"2026-12-03T12:57:09.552712345Z");
        let parsed = time::OffsetDateTime::parse(
            std::str::from_utf8(&out).unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(parsed.unix_timestamp(), 1_796_302_629);
    }

    #[test]
    fn a_line_is_the_json_serde_would_write() {
        let ws = WorkspaceId::new("team/a-1.b_c").unwrap();
        let name = SecretName::new("API_KEY.v-2").unwrap();
        let exe = std::path::PathBuf::from("/opt/\"odd\"\\path\n/bin");
        let event = Event {
            operation: "RETRIEVE",
            workspace: Some(&ws),
            name: Some(&name),
            outcome: "OK",
            uid: 1000,
            pid: Some(-1),
            exe: Some(&exe),
            reason: Some("idle"),
            stale: true,
        };
        let mut out = Vec::new();
        write(&mut out, &mut Clock::default(), &event, UNIX_EPOCH);
        assert_eq!(out.last(), Some(&b'\n'));
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let expected = serde_json::json!({
            "time": "1970-01-01T00:00:00.000000000Z",
            "operation": "RETRIEVE",
            "workspace": "team/a-1.b_c",
            "name": "API_KEY.v-2",
            "outcome": "OK",
            "uid": 1000,
            "pid": -1,
            "exe": "/opt/\"odd\"\\path\n/bin",
            "reason": "idle",
            "stale": true,
        });
        assert_eq!(line, expected);
        let bare = Event {
            workspace: None,
            name: None,
            pid: None,
            exe: None,
            reason: None,
            stale: false,
            ..event
        };
        out.clear();
        write(&mut out, &mut Clock::default(), &bare, UNIX_EPOCH);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"time\":\"1970-01-01T00:00:00.000000000Z\",\"operation\":\"RETRIEVE\",\
             \"workspace\":null,\"name\":null,\"outcome\":\"OK\",\"uid\":1000,\"pid\":null,\
             \"exe\":null}\n"
        );
    }
}
