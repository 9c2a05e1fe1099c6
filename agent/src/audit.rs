//! The audit log: one JSON line per access decision (time, operation, workspace, name,
//! outcome code, peer uid, pid and executable) — never a value or a passphrase.
//!
//! Each line is appended with a single `write(2)` on an `O_APPEND` descriptor, from the task
//! that made the decision. That costs a copy into the page cache (a few µs, no disk wait)
//! instead of waking a writer thread for every request, keeps lines from interleaving
//! (one append each), and leaves nothing buffered in the agent to lose if it is killed.
//! The file is created 0600.

use avp_protocol::{ErrorCode, SecretName, WorkspaceId};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

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

/// One access decision.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    /// RFC 3339 UTC.
    pub time: String,
    /// The operation, e.g. `RETRIEVE`.
    pub operation: &'a str,
    /// The workspace acted on, if any.
    pub workspace: Option<&'a str>,
    /// The secret acted on, if any.
    pub name: Option<&'a str>,
    /// `OK` or the AVP error code.
    pub outcome: &'a str,
    /// The peer's uid.
    pub uid: u32,
    /// The peer's pid.
    pub pid: Option<i32>,
    /// The peer's executable.
    pub exe: Option<String>,
}

/// The audit log.
#[derive(Debug)]
pub struct Audit {
    file: File,
    path: PathBuf,
    /// Set after the first failed write, so a full disk is reported once, not per request.
    failing: AtomicBool,
}

fn rfc3339_now() -> String {
    let now = time::OffsetDateTime::from(SystemTime::now());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

impl Audit {
    /// Opens (creating 0600, appending) the audit log at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            failing: AtomicBool::new(false),
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
        let event = Event {
            time: rfc3339_now(),
            operation,
            workspace: workspace.map(WorkspaceId::as_str),
            name: name.map(SecretName::as_str),
            outcome: outcome.err().map_or("OK", ErrorCode::as_str),
            uid: peer.uid,
            pid: peer.pid,
            exe: peer.exe.as_ref().map(|p| p.display().to_string()),
        };
        let Ok(mut line) = serde_json::to_vec(&event) else {
            return;
        };
        line.push(b'\n');
        match (&self.file).write_all(&line) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the audit log is being written again");
                }
            }
            Err(err) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(%err, "cannot write the audit log; audit records are being lost");
                }
            }
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
}
