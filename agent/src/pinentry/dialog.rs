//! One running pinentry: spawned in its own process group with only the environment
//! [`PinentryCommand`] chose and no descriptor of the agent's but its two pipes (std opens
//! every descriptor close-on-exec, and the agent marks inherited ones so at start). Every
//! read waits with `poll` until one deadline for the whole dialog: a pinentry that hangs is
//! killed (its whole group, `SIGKILL`) when it passes, one that dies reads as end of file.
//! Either way the dialog ends with an error and the child is reaped, never left a zombie.
//! The same wait watches a dismissal descriptor: when its other end closes (the vault was
//! unlocked some other way), the dialog ends at once and the pinentry goes away.

use super::PinentryCommand;
use super::assuan::{self, MAX_LINE};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The Assuan code of a dialog the user cancelled (`GPG_ERR_CANCELED` from the pinentry
/// source).
const CANCELLED: &str = "83886179";

/// How long `BYE` may take before the pinentry is killed anyway.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Why a dialog ended without a passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// The user cancelled (or closed the window).
    #[error("the pinentry was cancelled")]
    Cancelled,
    /// The deadline passed (a pinentry nobody answers, or one that hangs).
    #[error("the pinentry did not answer in time")]
    TimedOut,
    /// It could not be started, died, or spoke something else than Assuan.
    #[error("the pinentry failed: {0}")]
    Failed(String),
    /// The dialog was no longer needed (see [`Dialog::start`]'s `dismiss`).
    #[error("the pinentry was dismissed")]
    Dismissed,
}

/// A pinentry process and the Assuan conversation with it.
#[derive(Debug)]
pub struct Dialog {
    child: Child,
    to: ChildStdin,
    from: ChildStdout,
    /// Bytes read but not yet consumed as a line; wiped on drop (a `D` line is a passphrase).
    pending: Zeroizing<Vec<u8>>,
    deadline: Instant,
    /// Readable (hung up) once the dialog is no longer needed; not watched while `BYE`
    /// is being answered (the dialog is ending anyway, and its own unlock dismisses it).
    dismiss: OwnedFd,
    closing: bool,
}

impl Dialog {
    /// Starts `command`, reads its greeting and sends its `OPTION`s; every later wait ends
    /// at `deadline`, or with [`DialogError::Dismissed`] once `dismiss` is readable (the
    /// read end of a pipe whose write end the caller closes).
    pub fn start(
        command: &PinentryCommand,
        deadline: Instant,
        dismiss: OwnedFd,
    ) -> Result<Self, DialogError> {
        let mut child = Command::new(&command.program)
            .env_clear()
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own group, so a pinentry that started helpers dies with them, and a
            // terminal's Ctrl-C does not reach the agent's group through it.
            .process_group(0)
            .spawn()
            .map_err(|err| {
                DialogError::Failed(format!("cannot run {}: {err}", command.program.display()))
            })?;
        let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DialogError::Failed("no pipes to the pinentry".into()));
        };
        let mut dialog = Self {
            child,
            to,
            from,
            pending: Zeroizing::new(Vec::new()),
            deadline,
            dismiss,
            closing: false,
        };
        dialog.expect_ok()?;
        // A value with a control byte (a newline would end the line and start another
        // command) is left out rather than sent.
        let clean = |o: &&String| !o.chars().any(char::is_control);
        for option in command.options.iter().filter(clean) {
            // An option a pinentry does not know is not fatal (gpg-agent ignores it too).
            dialog.send(&format!("OPTION {option}"))?;
            match dialog.expect_ok() {
                Ok(()) | Err(DialogError::Failed(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(dialog)
    }

    /// Sends `verb text` (the text escaped) and waits for its `OK`.
    pub fn command(&mut self, verb: &str, text: &str) -> Result<(), DialogError> {
        self.send(&format!("{verb} {}", assuan::escape(text)))?;
        self.expect_ok()
    }

    /// `GETPIN`: the passphrase typed, in a buffer wiped on drop.
    pub fn get_pin(&mut self) -> Result<Zeroizing<Vec<u8>>, DialogError> {
        self.send("GETPIN")?;
        let mut pin = None;
        loop {
            let line = self.read_line()?;
            if let Some(data) = line.strip_prefix(b"D ") {
                pin = Some(
                    assuan::decode_data(data)
                        .ok_or_else(|| DialogError::Failed("a malformed D line".into()))?,
                );
                continue;
            }
            match answer(&line)? {
                Some(()) => return Ok(pin.unwrap_or_default()),
                None => continue,
            }
        }
    }

    /// `BYE`, then waits a moment for the program to exit (killed otherwise, on drop).
    pub fn close(mut self) {
        let _ = self.send("BYE");
        self.closing = true;
        self.deadline = self.deadline.min(Instant::now() + EXIT_GRACE);
        // Its `OK`, then end of file once it has exited (or the grace runs out).
        while self.read_line().is_ok() {}
    }

    fn send(&mut self, line: &str) -> Result<(), DialogError> {
        // The pipe's buffer holds far more than one command line, so this write does not
        // block on a pinentry that has stopped reading.
        self.to
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.to.flush())
            .map_err(|err| DialogError::Failed(format!("the pinentry went away: {err}")))
    }

    /// Reads lines until the `OK` or `ERR` that ends the answer.
    fn expect_ok(&mut self) -> Result<(), DialogError> {
        loop {
            let line = self.read_line()?;
            if answer(&line)?.is_some() {
                return Ok(());
            }
        }
    }

    /// One line, without its newline, waiting no later than the deadline.
    fn read_line(&mut self) -> Result<Zeroizing<Vec<u8>>, DialogError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line = Zeroizing::new(self.pending[..end].to_vec());
                self.pending.drain(..=end);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.pending.len() > MAX_LINE {
                return Err(DialogError::Failed(
                    "a line longer than Assuan allows".into(),
                ));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DialogError::TimedOut);
            }
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let watched = if self.closing { 1 } else { 2 };
            let mut fds = [
                PollFd::new(self.from.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.dismiss.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds[..watched], timeout) {
                Ok(0) => return Err(DialogError::TimedOut),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(DialogError::Failed(format!("poll: {err}"))),
            }
            if watched == 2 && fds[1].revents().is_some_and(|r| !r.is_empty()) {
                return Err(DialogError::Dismissed);
            }
            let mut chunk = Zeroizing::new([0u8; 512]);
            let n = self
                .from
                .read(&mut chunk[..])
                .map_err(|err| DialogError::Failed(format!("reading the pinentry: {err}")))?;
            if n == 0 {
                return Err(DialogError::Failed("the pinentry exited".into()));
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `Some(())` for `OK`, an error for `ERR`, `None` for the lines that come before the
/// answer (status, comments, anything else).
fn answer(line: &[u8]) -> Result<Option<()>, DialogError> {
    if line == b"OK" || line.starts_with(b"OK ") {
        return Ok(Some(()));
    }
    if let Some(rest) = line.strip_prefix(b"ERR ") {
        let rest = String::from_utf8_lossy(rest);
        let code = rest.split(' ').next().unwrap_or_default();
        return Err(if code == CANCELLED {
            DialogError::Cancelled
        } else {
            DialogError::Failed(format!("the pinentry answered ERR {rest}"))
        });
    }
    Ok(None)
}

impl Drop for Dialog {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // The group is the child's pid (`process_group(0)`); it also reaches anything the
        // pinentry started.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        assert_eq!(answer(b"OK"), Ok(Some(())));
        assert_eq!(answer(b"OK Pleased to meet you"), Ok(Some(())));
        assert_eq!(answer(b"S PASSWORD_FROM_CACHE"), Ok(None));
        assert_eq!(answer(b"# comment"), Ok(None));
        assert_eq!(
            answer(b"ERR 83886179 Operation cancelled <Pinentry>"),
            Err(DialogError::Cancelled)
        );
        assert!(matches!(
            answer(b"ERR 83886340 Timeout"),
            Err(DialogError::Failed(_))
        ));
    }
}
