//! Reading values and passphrases without leaving copies behind. Standard input is read
//! straight from file descriptor 0 (never through std's buffered `Stdin`, whose buffer
//! would keep a copy), into buffers that are wiped when dropped.
//!
//! - A value from a pipe or file is taken exactly, every byte, a trailing newline included
//!   (`printf 'x' | avp set A` stores `x`; `echo x | avp set A` stores `x\n`).
//! - A value or passphrase typed at a terminal is one hidden line without its newline.
//! - `--passphrase-stdin` reads one line per passphrase, without its `\n` (or `\r\n`).

use crate::fail::Failure;
use avp_client::{Limits, Passphrase, SecretValue};
use nix::errno::Errno;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use zeroize::{Zeroize, Zeroizing};

/// The longest passphrase accepted on standard input.
const MAX_PASSPHRASE: usize = 4096;

/// The largest value the protocol allows.
pub fn max_value_len() -> usize {
    Limits::AVP.max_secret_value_length as usize
}

/// `VALUE_TOO_LARGE`, refused before anything is sent.
pub fn too_large(len: usize) -> Failure {
    Failure::Client(avp_client::Error::ValueTooLarge {
        len,
        max: max_value_len(),
    })
}

/// True when standard input is a terminal (so we prompt instead of reading it).
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// One `read(2)` from standard input, retried on EINTR.
fn read_stdin(buf: &mut [u8]) -> Result<usize, Failure> {
    loop {
        match nix::unistd::read(io::stdin().as_fd(), buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(Failure::io("cannot read standard input", errno.into()));
            }
        }
    }
}

/// All of standard input as a secret value, refused with `VALUE_TOO_LARGE` past the limit
/// (without reading on).
pub fn value_from_stdin() -> Result<SecretValue, Failure> {
    let max = max_value_len();
    // One buffer of the final maximum size, so it never reallocates (and never leaves a
    // stale copy behind); wiped on drop.
    let mut buf = Zeroizing::new(vec![0u8; max + 1]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Err(too_large(filled));
        }
        match read_stdin(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(SecretValue::from_slice(&buf[..filled]))
}

/// All of standard input (for `import -`), in a wiped buffer; `None` past `max` bytes.
pub fn all_of_stdin(max: usize) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    read_to_end(max, read_stdin)
}

/// Everything `read` yields up to end of input, in a wiped buffer that grows by copying
/// into a fresh buffer and wiping the old one (a pipe or FIFO has no size to size it by).
/// `None` as soon as more than `max` bytes arrive: reading stops there, so an endless
/// stream costs at most `max` bytes of memory.
pub fn read_to_end(
    max: usize,
    mut read: impl FnMut(&mut [u8]) -> Result<usize, Failure>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled > max {
                return Ok(None);
            }
            // At most one byte past `max`, enough to tell "exactly max" from "more".
            let size = (buf.len() * 2).min(max.saturating_add(1)).max(filled + 1);
            let mut bigger = Zeroizing::new(vec![0u8; size]);
            bigger[..filled].copy_from_slice(&buf[..filled]);
            buf = bigger;
        }
        match read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    if filled > max {
        return Ok(None);
    }
    buf.truncate(filled);
    Ok(Some(buf))
}

/// One line of standard input without its line ending, read a byte at a time so the next
/// line stays unread for the next passphrase. `None` at end of input.
fn line_from_stdin() -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_PASSPHRASE + 1));
    let mut byte = [0u8; 1];
    loop {
        if read_stdin(&mut byte)? == 0 {
            if line.is_empty() {
                return Ok(None);
            }
            break;
        }
        if byte[0] == b'\n' {
            break;
        }
        if line.len() == MAX_PASSPHRASE {
            return Err(Failure::input(
                format!("passphrase on standard input is longer than {MAX_PASSPHRASE} bytes"),
                "use a shorter passphrase",
            ));
        }
        line.push(byte[0]);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    byte.zeroize();
    Ok(Some(line))
}

/// A passphrase from a line of standard input.
pub fn passphrase_from_stdin(what: &str) -> Result<Passphrase, Failure> {
    let Some(mut line) = line_from_stdin()? else {
        return Err(Failure::usage(
            format!("no {what} on standard input"),
            "give one line per passphrase on standard input",
        ));
    };
    // Move the bytes out of the wiped buffer; `from_string` wipes any spare capacity.
    let bytes = std::mem::take(&mut *line);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Passphrase::from_string(text)),
        Err(err) => {
            drop(Zeroizing::new(err.into_bytes()));
            Err(Failure::input(
                format!("the {what} is not valid UTF-8"),
                "use a UTF-8 passphrase",
            ))
        }
    }
}

/// Reads a hidden line from the terminal.
fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if !stdin_is_terminal() {
        return Err(Failure::usage(
            "standard input is not a terminal, so avp cannot prompt",
            "pass --passphrase-stdin and give the passphrase on standard input",
        ));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|err| match err.kind() {
            // Ctrl-D on an empty line: the user gave up, nothing is wrong with a file.
            io::ErrorKind::UnexpectedEof => cancelled(),
            _ => Failure::io("cannot read from the terminal", err),
        })
}

/// End of input at a prompt (Ctrl-D): nothing was sent, so nothing changed. A local
/// event, so no protocol code (JSON code `INVALID_INPUT`).
fn cancelled() -> Failure {
    Failure::input(
        "cancelled at the prompt (end of input); nothing was changed",
        "run the command again when ready",
    )
}

/// A passphrase typed at the terminal, without echo; twice when `confirm` is set (a new
/// passphrase), and then an empty one is refused right after the first entry.
pub fn prompt_passphrase(prompt: &str, confirm: bool) -> Result<Passphrase, Failure> {
    let first = prompt_hidden(prompt)?;
    if confirm {
        if first.is_empty() {
            return Err(empty_passphrase());
        }
        let second = prompt_hidden("Retype to confirm: ")?;
        if *first != *second {
            return Err(Failure::input(
                "the two passphrases differ; nothing was changed",
                "run the command again",
            ));
        }
    }
    Ok(Passphrase::new(&first))
}

/// An empty new passphrase: a local mistake, refused before anything is sent.
fn empty_passphrase() -> Failure {
    Failure::input("the passphrase is empty", "choose a non-empty passphrase")
}

/// Refuses an empty new passphrase.
pub fn require_non_empty(passphrase: &Passphrase) -> Result<(), Failure> {
    if passphrase.is_empty() {
        return Err(empty_passphrase());
    }
    Ok(())
}

/// An empty value is refused unless `--allow-empty` was given: a job whose standard input
/// is `/dev/null`, or an unset shell variable as the argument, must not blank a secret.
fn empty_value(from_terminal: bool) -> Failure {
    if from_terminal {
        return Failure::input(
            "the value is empty; nothing was stored",
            "type a value, or pipe an empty one with --allow-empty if that is what you mean",
        );
    }
    Failure::input(
        "the value is empty (standard input or the argument held no bytes); nothing was stored",
        "pass --allow-empty to store an empty value on purpose",
    )
}

/// The value of `set`/`rotate`: the argument, or standard input when it is absent or `-`
/// (a hidden line, asked twice, when standard input is a terminal). Empty is refused from
/// a terminal, and elsewhere unless `allow_empty`.
pub fn value(
    argument: Option<std::ffi::OsString>,
    name: &str,
    allow_empty: bool,
) -> Result<SecretValue, Failure> {
    use std::os::unix::ffi::OsStringExt;
    let value = match argument {
        Some(arg) if arg != "-" => SecretValue::from_vec(arg.into_vec()),
        _ if stdin_is_terminal() => {
            let first = prompt_hidden(&format!("Value of {name} (hidden): "))?;
            // Refused at once, before the retype: Enter twice is no way to store nothing.
            if first.is_empty() {
                return Err(empty_value(true));
            }
            let second = prompt_hidden("Retype to confirm: ")?;
            if *first != *second {
                return Err(Failure::input(
                    "the two values differ; nothing was stored",
                    "run the command again",
                ));
            }
            SecretValue::from_slice(first.as_bytes())
        }
        _ => value_from_stdin()?,
    };
    if value.is_empty() && !allow_empty {
        return Err(empty_value(false));
    }
    if value.len() > max_value_len() {
        return Err(too_large(value.len()));
    }
    Ok(value)
}
