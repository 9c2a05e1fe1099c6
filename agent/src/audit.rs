//! The audit log: one JSON line per access decision (time, operation, workspace, name,
//! outcome code, peer uid, pid and executable) — never a value or a passphrase.
//!
//! Lines are appended to an in-memory buffer by the thread that made the decision and
//! written to the file by a flusher thread at most [`FLUSH_DELAY`] later, in one `write(2)`
//! per batch on an `O_APPEND` descriptor. Writing each line from the request path cost
//! about 2 µs of a 12 µs RETRIEVE round trip (an ext4 append updates the inode's times
//! under its journal); waking a writer thread per line cost more. After a batch the flusher
//! keeps looking every [`FLUSH_DELAY`] for [`STAY_AWAKE`] (twenty wake-ups a second of its own);
//! only then does it sleep until a line arrives, so an idle agent does not wake up for it,
//! and a request wakes it only when it has been asleep — a burst of one-shot commands (a
//! script calling `avp get` in a loop) makes no cross-CPU wake-up in the middle of each
//! request, which cost the request tens of microseconds on a small VM. Dropping the log
//! (agent shutdown) writes what is left. A `SIGKILL` can lose the last 50 ms of lines; the
//! file is only as tamper-proof as the user's own files anyway (the same uid can edit it).
//! The file is created 0600.
//!
//! The path is not trusted: the log names every secret that is read, so another user must
//! not be able to read it, and a planted symlink must not turn the appends into writes to
//! another file (`~/.bashrc`). Like the socket directory, the log is refused — the agent
//! does not start — unless it is a regular file of ours, with one link, closed to group
//! and other, opened without following a symlink, in a directory others cannot write to.

mod line;

pub use line::Event;

use avp_protocol::{ErrorCode, SecretName, WorkspaceId};
use line::Clock;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroize;

/// How long a line may wait in memory before it is written.
pub const FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Who is on the other end of a connection, from `SO_PEERCRED` and `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's uid.
    pub uid: u32,
    /// The peer's pid, if the kernel reported one.
    pub pid: Option<i32>,
    /// The peer's executable (`/proc/<pid>/exe`), if readable.
    pub exe: Option<PathBuf>,
}

/// How long the flusher keeps looking for lines on its own after its last batch.
const STAY_AWAKE: Duration = Duration::from_secs(5);

/// The most buffer capacity the flusher keeps between batches (a 50 ms batch at ~400,000 requests
/// a second); a bigger one, after a burst, is freed.
const KEPT_BATCH_CAPACITY: usize = 4 << 20;

/// Lines waiting for the flusher, and whether the log is closing.
#[derive(Debug, Default)]
struct Pending {
    lines: Vec<u8>,
    /// The time's whole-second part, formatted once a second.
    clock: Clock,
    closing: bool,
    /// The flusher waits for [`Shared::wake`] (else it looks again on its own).
    asleep: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when the first line lands in an empty buffer while the flusher is asleep,
    /// and at close.
    wake: Condvar,
}

/// The audit log. Dropping it writes every pending line and closes the file.
#[derive(Debug)]
pub struct Audit {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Audit {
    /// Opens (creating 0600, appending) the audit log at `path`, after the checks in the
    /// module docs; a refusal says what is wrong and how to fix it.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            check_directory(dir)?;
        }
        let file = open_log_file(path)?;
        let shared = Arc::new(Shared::default());
        let flushing = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("avp-audit".into())
            .spawn(move || flush_lines(file, &flushing))?;
        Ok(Self {
            shared,
            flusher: Some(flusher),
            path: path.to_path_buf(),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one decision.
    pub fn record(
        &self,
        peer: &Peer,
        operation: &str,
        workspace: Option<&WorkspaceId>,
        name: Option<&SecretName>,
        outcome: Result<(), ErrorCode>,
    ) {
        self.record_read(peer, operation, workspace, name, outcome, false);
    }

    /// Records one decision, saying whether it was answered from last-known state.
    pub fn record_read(
        &self,
        peer: &Peer,
        operation: &str,
        workspace: Option<&WorkspaceId>,
        name: Option<&SecretName>,
        outcome: Result<(), ErrorCode>,
        stale: bool,
    ) {
        let event = Event {
            operation,
            workspace,
            name,
            outcome: outcome.err().map_or("OK", ErrorCode::as_str),
            uid: peer.uid,
            pid: peer.pid,
            exe: peer.exe.as_deref(),
            reason: None,
            stale,
        };
        self.append(&event);
    }

    /// Records a change of the vault's state that no request decided alone (a timer, a
    /// signal, a request — every lock and unlock), as the agent's own line: `operation` is
    /// `VAULT_LOCKED` or `VAULT_UNLOCKED`, the uid and pid are the agent's.
    pub fn record_state_change(&self, operation: &str, reason: &str) {
        let event = Event {
            operation,
            workspace: None,
            name: None,
            outcome: "OK",
            uid: nix::unistd::getuid().as_raw(),
            pid: Some(std::process::id() as i32),
            exe: None,
            reason: Some(reason),
            stale: false,
        };
        self.append(&event);
    }

    fn append(&self, event: &Event<'_>) {
        let mut pending = crate::sync::guard(&self.shared.pending);
        let wake = pending.lines.is_empty() && pending.asleep;
        // Timed under the lock: the lines are in time order.
        let Pending { lines, clock, .. } = &mut *pending;
        line::write(lines, clock, event, SystemTime::now());
        drop(pending);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

/// The log's directory must not let other users replace or plant files in it.
fn check_directory(dir: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(refused(format!(
            "its directory {} belongs to uid {}, not to you (uid {uid}): pass --audit-log \
             with a path in a directory of yours",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refused(format!(
            "its directory {} is writable by other users (mode {mode:o}): run `chmod go-w \
             {}` or pass --audit-log with a path in a private directory",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Opens the log for appending without following a symlink or blocking on a FIFO, and
/// checks what was opened (so the check and the use are the same file).
fn open_log_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(nix::libc::ELOOP) => refused(format!(
                "it is a symlink: remove {} (the agent creates the log itself) or pass \
                 --audit-log with the real path",
                path.display()
            )),
            _ => err,
        })?;
    let meta = file.metadata()?;
    let uid = nix::unistd::getuid().as_raw();
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return Err(refused(format!(
            "it is not a plain file (a directory, FIFO, device or a file with other hard \
             links): remove {} or pass another --audit-log",
            path.display()
        )));
    }
    if meta.uid() != uid {
        return Err(refused(format!(
            "it belongs to uid {}, not to you (uid {uid}): remove {} or pass another \
             --audit-log",
            meta.uid(),
            path.display()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refused(format!(
            "it is open to other users (mode {mode:o}), who could read the secret names in \
             it: run `chmod 600 {}` and start again",
            path.display()
        )));
    }
    Ok(file)
}

/// The flusher: waits for a first line, lets more gather for [`FLUSH_DELAY`], writes them
/// all in one append; for [`STAY_AWAKE`] after that it looks every [`FLUSH_DELAY`] without
/// being woken.
fn flush_lines(mut file: File, shared: &Shared) {
    let mut failing = false;
    // The batch being written, swapped with the pending buffer so that both keep their
    // capacity: a buffer taken fresh for every batch regrew by doubling on the request path,
    // each step a copy and (under the zeroizing allocator) a wipe of the old block.
    let mut batch = Vec::new();
    let mut last_batch: Option<Instant> = None;
    loop {
        let mut pending = crate::sync::guard(&shared.pending);
        let awake = last_batch.is_some_and(|at| at.elapsed() < STAY_AWAKE);
        // Lines found by looking have waited long enough already.
        let gathered = pending.lines.is_empty() && !pending.closing && awake;
        if gathered {
            drop(pending);
            std::thread::sleep(FLUSH_DELAY);
            pending = crate::sync::guard(&shared.pending);
            if pending.lines.is_empty() && !pending.closing {
                continue;
            }
        }
        while pending.lines.is_empty() && !pending.closing {
            pending.asleep = true;
            pending = shared
                .wake
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        pending.asleep = false;
        last_batch = Some(Instant::now());
        let closing = pending.closing;
        if !closing && !gathered {
            drop(pending);
            std::thread::sleep(FLUSH_DELAY);
            pending = crate::sync::guard(&shared.pending);
        }
        std::mem::swap(&mut batch, &mut pending.lines);
        let closing = closing || pending.closing;
        drop(pending);
        if !batch.is_empty() {
            match file.write_all(&batch) {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the audit log is being written again");
                }
                Ok(()) => {}
                Err(err) if !failing => {
                    failing = true;
                    tracing::error!(%err, "cannot write the audit log; audit records are being lost");
                }
                Err(_) => {}
            }
        }
        // Wiped as freeing it did (the lines name secrets); a burst's big buffer is let go.
        batch.zeroize();
        if batch.capacity() > KEPT_BATCH_CAPACITY {
            batch = Vec::new();
        }
        if closing {
            return;
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        crate::sync::guard(&self.shared.pending).closing = true;
        self.shared.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_the_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/audit.jsonl");
        let audit = Audit::open(&path).unwrap();
        let peer = Peer {
            uid: 1000,
            pid: Some(42),
            exe: Some(PathBuf::from("/usr/bin/env")),
        };
        let ws = WorkspaceId::new("w").unwrap();
        let name = SecretName::new("API_KEY").unwrap();
        audit.record(&peer, "RETRIEVE", Some(&ws), Some(&name), Ok(()));
        audit.record(&peer, "STORE", Some(&ws), None, Err(ErrorCode::VaultLocked));
        drop(audit);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["operation"], "RETRIEVE");
        assert_eq!(lines[0]["name"], "API_KEY");
        assert_eq!(lines[0]["outcome"], "OK");
        assert_eq!(lines[0]["exe"], "/usr/bin/env");
        assert_eq!(lines[1]["outcome"], "VAULT_LOCKED");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_executable_path_that_is_not_utf8_is_written_as_display_shows_it() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path).unwrap();
        let exe = PathBuf::from(OsStr::from_bytes(b"/opt/caf\xe9/bin/job"));
        let peer = Peer {
            uid: 1000,
            pid: Some(42),
            exe: Some(exe.clone()),
        };
        audit.record(&peer, "LIST", None, None, Ok(()));
        drop(audit);
        let text = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["exe"], exe.display().to_string());
        assert_eq!(line["exe"], "/opt/caf\u{fffd}/bin/job");
    }

    #[test]
    fn each_batch_is_written_once_in_order() {
        // The flusher reuses its buffers between batches: a batch must not be written again
        // with the next one, nor lose lines at the swap.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path).unwrap();
        let peer = Peer {
            uid: 1000,
            pid: Some(42),
            exe: None,
        };
        let names = ["FIRST", "SECOND", "THIRD"];
        for (written, name) in names.iter().enumerate() {
            let name = SecretName::new(*name).unwrap();
            audit.record(&peer, "RETRIEVE", None, Some(&name), Ok(()));
            // Wait for this batch to reach the file before the next line starts another.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&path).unwrap().lines().count() <= written {
                assert!(
                    std::time::Instant::now() < deadline,
                    "batch {written} never written"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        drop(audit);
        let text = std::fs::read_to_string(&path).unwrap();
        let written: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].to_string())
            .collect();
        assert_eq!(written, ["\"FIRST\"", "\"SECOND\"", "\"THIRD\""]);
    }
}
