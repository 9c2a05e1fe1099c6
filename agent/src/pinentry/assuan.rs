//! Assuan's escaping: in a command's argument `%`, CR, LF (and every control byte) are
//! written `%XX`; in a `D` line the same escapes come back and are decoded.

use zeroize::Zeroizing;

/// Longest line either side may send (Assuan's `ASSUAN_LINELENGTH`).
pub const MAX_LINE: usize = 1000;

/// `text` escaped for a command argument (`SETDESC`, `SETERROR`, …), cut so the command line
/// stays under [`MAX_LINE`].
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if out.len() > MAX_LINE - 64 {
            break;
        }
        match ch {
            '%' | '\r' | '\n' | '\u{0}'..='\u{1f}' | '\u{7f}' => {
                out.push_str(&format!("%{:02X}", u32::from(ch)));
            }
            _ => out.push(ch),
        }
    }
    out
}

/// The payload of a `D` line, `%XX` escapes decoded, into a buffer wiped on drop. `None` for
/// a malformed escape.
pub fn decode_data(data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'%' {
            let hex = data.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_and_percent_are_escaped() {
        assert_eq!(escape("50% off\nnow\r"), "50%25 off%0Anow%0D");
        assert_eq!(escape("plain é"), "plain é");
        assert!(escape(&"x".repeat(5000)).len() < MAX_LINE);
    }

    #[test]
    fn data_lines_are_decoded() {
        assert_eq!(&**decode_data(b"a%25b%0Ac").unwrap(), b"a%b\nc");
        assert_eq!(&**decode_data(b"").unwrap(), b"");
        assert!(decode_data(b"bad%4").is_none());
        assert!(decode_data(b"bad%zz").is_none());
    }
}
