//! `avp ls --values` and `avp ls --reveal`: the workspace's secrets with their values —
//! masked by default (the length, and at most a few leading characters of a long text
//! value), in full with `--reveal`. Everything is rendered into one wiped buffer: a value,
//! or the part of it that is shown, never lands in a `String`.

use crate::cli::LsArgs;
use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::output;
use avp_client::{ErrorCode, Secret};
use std::io::{self, Write};

/// One shown character per this many characters of the value…
const CHARS_PER_SHOWN: usize = 8;
/// …and never more than this: a 32-character token shows 4, an 8-character password 1,
/// anything shorter none.
const MAX_SHOWN: usize = 4;

/// How many leading bytes of `value` a masked preview shows: none for a value that is not
/// printable text, else [`MAX_SHOWN`] characters at most (cut on a character boundary).
fn shown_prefix(value: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(value) else {
        return 0;
    };
    if text.chars().any(char::is_control) {
        return 0;
    }
    let shown = (text.chars().count() / CHARS_PER_SHOWN).min(MAX_SHOWN);
    text.char_indices()
        .nth(shown)
        .map_or(text.len(), |(i, _)| i)
}

/// Writes the masked preview: the shown prefix and `…`, or `(binary)` for bytes that are
/// not UTF-8.
fn write_preview(out: &mut dyn Write, value: &[u8]) -> io::Result<()> {
    if std::str::from_utf8(value).is_err() {
        return out.write_all(b"(binary)");
    }
    out.write_all(&value[..shown_prefix(value)])?;
    out.write_all("…".as_bytes())
}

/// Writes a value in full on one table line: as is when it is printable text, else as a
/// JSON string (escapes for control characters) or `base64:` for non-UTF-8 bytes.
fn write_revealed(out: &mut dyn Write, value: &[u8]) -> io::Result<()> {
    match std::str::from_utf8(value) {
        Ok(text) if !text.chars().any(char::is_control) && !text.is_empty() => out.write_all(value),
        Ok(text) => output::write_json_string(out, text),
        Err(_) => {
            use base64::Engine;
            let encoded =
                zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
            out.write_all(b"base64:")?;
            out.write_all(encoded.as_bytes())
        }
    }
}

pub fn ls(ctx: &Ctx, args: LsArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let filter = context::labels(args.labels)?;
    let secrets = ctx.with_session(|client, session| {
        let listed = client.list_all(session, &filter)?;
        let mut secrets = Vec::with_capacity(listed.len());
        for meta in listed {
            match client.retrieve(session, &meta.name, None) {
                Ok(secret) => secrets.push(secret),
                // Deleted or expired since the listing: it is simply not there any more.
                Err(err) if err.code() == Some(ErrorCode::SecretNotFound) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(secrets)
    })?;
    let reveal = args.reveal;
    let bytes = if ctx.json {
        output::render_secret(|out| write_json(out, workspace.as_str(), &secrets, reveal))?
    } else {
        if secrets.is_empty() {
            output::note(&format!("no secrets in workspace `{workspace}`"));
            return Ok(());
        }
        output::render_secret(|out| write_table(out, &secrets, reveal))?
    };
    output::write_secret(&bytes)
}

fn write_json(
    out: &mut dyn Write,
    workspace: &str,
    secrets: &[Secret],
    reveal: bool,
) -> io::Result<()> {
    out.write_all(b"{\"workspace\":")?;
    output::write_json_string(out, workspace)?;
    out.write_all(b",\"secrets\":[")?;
    for (i, secret) in secrets.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let value = secret.value.expose_secret();
        out.write_all(b"{\"name\":")?;
        output::write_json_string(out, secret.name.as_str())?;
        write!(
            out,
            ",\"version\":{},\"length\":{},",
            secret.version,
            value.len()
        )?;
        if reveal {
            output::write_value_fields(out, value)?;
        } else {
            let mut preview = zeroize::Zeroizing::new(Vec::new());
            write_preview(&mut *preview, value)?;
            out.write_all(b"\"preview\":")?;
            // The preview is UTF-8: a cut on a character boundary plus `…`, or `(binary)`.
            output::write_json_string(out, &String::from_utf8_lossy(&preview))?;
        }
        out.write_all(b"}")?;
    }
    out.write_all(b"]}\n")
}

fn write_table(out: &mut dyn Write, secrets: &[Secret], reveal: bool) -> io::Result<()> {
    let lengths: Vec<String> = secrets.iter().map(|s| s.value.len().to_string()).collect();
    let versions: Vec<String> = secrets.iter().map(|s| s.version.to_string()).collect();
    let width =
        |header: &str, cells: &mut dyn Iterator<Item = usize>| cells.fold(header.len(), usize::max);
    let name_w = width("NAME", &mut secrets.iter().map(|s| s.name.as_str().len()));
    let version_w = width("VERSION", &mut versions.iter().map(String::len));
    let length_w = width("LENGTH", &mut lengths.iter().map(String::len));
    writeln!(
        out,
        "{:name_w$}  {:version_w$}  {:length_w$}  VALUE",
        "NAME", "VERSION", "LENGTH"
    )?;
    for ((secret, version), length) in secrets.iter().zip(&versions).zip(&lengths) {
        write!(
            out,
            "{:name_w$}  {version:version_w$}  {length:length_w$}  ",
            secret.name.as_str()
        )?;
        let value = secret.value.expose_secret();
        if reveal {
            write_revealed(out, value)?;
        } else {
            write_preview(out, value)?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(value: &[u8]) -> String {
        let mut out = Vec::new();
        write_preview(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn previews_show_at_most_four_characters_and_none_of_short_values() {
        assert_eq!(preview(b"hunter2"), "…");
        assert_eq!(preview(b"hunter22"), "h…");
        assert_eq!(preview(b"sk_live_0123456789abcdef0123456789"), "sk_l…");
        assert_eq!(preview("é".repeat(40).as_bytes()), "éééé…");
        assert_eq!(preview(b""), "…");
        assert_eq!(preview(b"two\nlines-of-a-long-enough-value"), "…");
        assert_eq!(preview(b"\xff\xfe\x00abcdefghijkl"), "(binary)");
    }

    #[test]
    fn revealed_values_stay_on_one_line() {
        let reveal = |v: &[u8]| {
            let mut out = Vec::new();
            write_revealed(&mut out, v).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(reveal(b"plain value"), "plain value");
        assert_eq!(reveal(b"a\nb"), "\"a\\nb\"");
        assert_eq!(reveal(b""), "\"\"");
        assert_eq!(reveal(b"\xff"), "base64:/w==");
    }
}
