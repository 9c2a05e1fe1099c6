//! dotenv files, read and written byte for byte (values need not be UTF-8).
//!
//! Reading follows the common dotenv parsers:
//! - blank lines and lines starting with `#` are skipped; `export ` before a name is ignored;
//!   spaces around the name and after `=` are ignored;
//! - `'single quotes'`: literal, may span lines; as in a shell, `\'` and further quoted
//!   parts may follow directly (`'it'\''s'` is `it's`);
//! - `"double quotes"`: `\n`, `\r`, `\t`, `\"` and `\\` are escapes (any other backslash is
//!   kept as is), may span lines;
//! - unquoted: to the end of the line, minus a ` #comment` (a `#` after a space or tab) and
//!   trailing whitespace;
//! - after a closing quote only whitespace and a `#comment` may follow;
//! - no `${VAR}` interpolation: a `$` is just a `$`.
//!
//! Writing single-quotes every value and writes each `'` as `'\''` (close, escaped quote,
//! reopen): the only quoting in which POSIX sh, bash and zsh expand nothing, so sourcing
//! the file (`set -a; . ./file`) yields exactly the stored bytes and runs nothing, and
//! reading it back gives the same bytes. A NUL byte cannot be written: no shell variable or
//! environment can hold one.

use avp_client::{ErrorCode, SecretName, SecretValue};
use std::io::{self, Write};
use zeroize::Zeroizing;

/// One `NAME=VALUE` entry.
#[derive(Debug)]
pub struct Entry {
    /// The name.
    pub name: SecretName,
    /// The value.
    pub value: SecretValue,
}

/// Why a file is not valid: the line and a fixed reason (never the file's bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// The line of the bad entry (1-based).
    pub line: usize,
    /// The AVP code for the problem.
    pub code: ErrorCode,
    /// What is wrong.
    pub reason: &'static str,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
    max_value: usize,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_blank(*first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_blank(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn error(&self, line: usize, code: ErrorCode, reason: &'static str) -> ParseError {
        ParseError { line, code, reason }
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    fn skip_to_line_end(&mut self) {
        while self.peek().is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
    }

    /// Counts the newlines in `input[from..to]` into the line number.
    fn count_lines(&mut self, from: usize, to: usize) {
        self.line += self.input[from..to].iter().filter(|&&b| b == b'\n').count();
    }

    fn entry(&mut self) -> Result<Entry, ParseError> {
        let line = self.line;
        if self.input[self.pos..].starts_with(b"export")
            && matches!(self.input.get(self.pos + 6), Some(b' ' | b'\t'))
        {
            self.pos += 6;
            self.skip_blanks();
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b'=' && b != b'\n') {
            self.pos += 1;
        }
        if self.peek() != Some(b'=') {
            return Err(self.error(line, ErrorCode::InvalidRequest, "expected NAME=VALUE"));
        }
        let key = trim(&self.input[start..self.pos]);
        self.pos += 1;
        let name = std::str::from_utf8(key)
            .ok()
            .and_then(|key| SecretName::new(key).ok())
            .ok_or(self.error(
                line,
                ErrorCode::InvalidName,
                "invalid secret name: use an ASCII letter, then letters, digits, '_', '.' or '-'",
            ))?;
        let before = self.pos;
        self.skip_blanks();
        let value = match self.peek() {
            Some(b'\'') => self.single_quoted(line)?,
            Some(b'"') => self.double_quoted(line)?,
            _ => self.unquoted(self.pos > before),
        };
        if value.len() > self.max_value {
            return Err(self.error(
                line,
                ErrorCode::ValueTooLarge,
                "value larger than the limit",
            ));
        }
        Ok(Entry { name, value })
    }

    /// `'…'`, then any run of `\'` and further `'…'` parts, joined as a shell joins them.
    fn single_quoted(&mut self, line: usize) -> Result<SecretValue, ParseError> {
        let first = self.pos;
        // The joined value is never longer than the quoted text: find its end, size once.
        let mut end = first;
        loop {
            if self.input[end..].starts_with(b"\\'") {
                end += 2;
            } else if self.input.get(end) == Some(&b'\'') {
                let Some(len) = self.input[end + 1..].iter().position(|&b| b == b'\'') else {
                    return Err(self.error(
                        line,
                        ErrorCode::InvalidRequest,
                        "unterminated single quote",
                    ));
                };
                end += len + 2;
            } else {
                break;
            }
        }
        let mut value = Zeroizing::new(Vec::with_capacity(end - first));
        let mut i = first;
        while i < end {
            if self.input[i] == b'\\' {
                value.push(b'\'');
                i += 2;
            } else {
                let part = &self.input[i + 1..end];
                let len = part.iter().position(|&b| b == b'\'').unwrap_or(part.len());
                value.extend_from_slice(&part[..len]);
                i += len + 2;
            }
        }
        self.count_lines(first, end);
        self.pos = end;
        self.after_quote()?;
        Ok(SecretValue::from_slice(&value))
    }

    fn double_quoted(&mut self, line: usize) -> Result<SecretValue, ParseError> {
        let start = self.pos + 1;
        let mut end = start;
        loop {
            match self.input.get(end) {
                None => {
                    return Err(self.error(
                        line,
                        ErrorCode::InvalidRequest,
                        "unterminated double quote",
                    ));
                }
                Some(b'"') => break,
                Some(b'\\') => end += 2,
                Some(_) => end += 1,
            }
        }
        // The unescaped value is never longer than the quoted text: size it once.
        let mut value = Zeroizing::new(Vec::with_capacity(end - start));
        let mut i = start;
        while i < end {
            match (self.input[i], self.input.get(i + 1)) {
                (b'\\', Some(&next @ (b'n' | b'r' | b't' | b'"' | b'\\'))) => {
                    value.push(match next {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                    i += 2;
                }
                (byte, _) => {
                    value.push(byte);
                    i += 1;
                }
            }
        }
        self.count_lines(start, end);
        self.pos = end + 1;
        self.after_quote()?;
        Ok(SecretValue::from_slice(&value))
    }

    /// After a closing quote: only blanks and a comment until the end of the line.
    fn after_quote(&mut self) -> Result<(), ParseError> {
        self.skip_blanks();
        match self.peek() {
            None | Some(b'\n') => Ok(()),
            Some(b'#') => {
                self.skip_to_line_end();
                Ok(())
            }
            Some(_) => Err(self.error(
                self.line,
                ErrorCode::InvalidRequest,
                "unexpected text after the closing quote",
            )),
        }
    }

    /// To the end of the line, minus a ` #comment` and trailing blanks.
    fn unquoted(&mut self, blank_before: bool) -> SecretValue {
        let start = self.pos;
        let mut end = start;
        while let Some(&b) = self.input.get(end) {
            if b == b'\n' {
                break;
            }
            let after_blank = if end == start {
                blank_before
            } else {
                is_blank(self.input[end - 1])
            };
            if b == b'#' && after_blank {
                break;
            }
            end += 1;
        }
        let value = SecretValue::from_slice(trim(&self.input[start..end]));
        self.pos = end;
        self.skip_to_line_end();
        value
    }
}

/// Parses a whole file; the first bad entry fails it all, naming its line.
pub fn parse(input: &[u8], max_value: usize) -> Result<Vec<Entry>, ParseError> {
    let mut parser = Parser {
        input,
        pos: 0,
        line: 1,
        max_value,
    };
    let mut entries = Vec::new();
    loop {
        parser.skip_blanks();
        match parser.peek() {
            None => return Ok(entries),
            Some(b'\n') => {
                parser.pos += 1;
                parser.line += 1;
            }
            Some(b'#') => parser.skip_to_line_end(),
            Some(_) => entries.push(parser.entry()?),
        }
    }
}

/// True when `value` can be written: anything but a NUL byte.
pub fn can_write(value: &[u8]) -> bool {
    !value.contains(&0)
}

/// Writes one `NAME='value'` line (each `'` as `'\''`) that [`parse`] reads back exactly
/// and a shell sources without expanding anything. A value with a NUL byte is refused
/// (check [`can_write`] first); the error never contains the value.
pub fn write_entry(out: &mut dyn Write, name: &SecretName, value: &[u8]) -> io::Result<()> {
    if !can_write(value) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte cannot be written to a dotenv file",
        ));
    }
    out.write_all(name.as_str().as_bytes())?;
    out.write_all(b"='")?;
    let mut parts = value.split(|&b| b == b'\'');
    if let Some(first) = parts.next() {
        out.write_all(first)?;
    }
    for part in parts {
        out.write_all(b"'\\''")?;
        out.write_all(part)?;
    }
    out.write_all(b"'\n")
}

#[cfg(test)]
#[path = "dotenv_tests.rs"]
mod tests;
