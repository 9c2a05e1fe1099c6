//! `avp audit`: the agent's audit log (one JSON line per access decision, PROTOCOL.md
//! §9.10) as a table, filtered by age, secret, workspace and outcome; `--json` prints the
//! matching lines exactly as the agent wrote them. The log's path comes from STATUS (or
//! `--file`). `--follow` keeps reading as the agent appends, like `tail -f`, and starts
//! over if the file is truncated or replaced.

use crate::context::Ctx;
use crate::fail::Failure;
use crate::output;
use avp_client::ErrorCode;
use clap::Args;
use serde::Deserialize;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Keep printing lines as the agent writes them (stop with Ctrl-C)
    #[arg(short, long)]
    pub follow: bool,

    /// Only lines from the last DUR (e.g. 30m, 12h, 7d)
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,

    /// Only lines about this secret
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Only lines with this outcome: OK or an AVP error code (e.g. SECRET_NOT_FOUND)
    #[arg(long, value_name = "CODE")]
    pub outcome: Option<String>,

    /// Read this audit log instead of asking the agent where its log is
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// One audit line, as `agent/src/audit.rs` writes it (fields avp does not show are ignored).
#[derive(Debug, Deserialize)]
struct Event {
    time: String,
    operation: String,
    workspace: Option<String>,
    name: Option<String>,
    outcome: String,
    pid: Option<i64>,
    exe: Option<String>,
    reason: Option<String>,
}

/// Which lines to show.
struct Filter {
    since: Option<OffsetDateTime>,
    name: Option<String>,
    workspace: Option<String>,
    outcome: Option<String>,
}

impl Filter {
    fn any(&self) -> bool {
        self.since.is_some()
            || self.name.is_some()
            || self.workspace.is_some()
            || self.outcome.is_some()
    }

    fn keeps(&self, event: &Event) -> bool {
        let time_ok = self.since.is_none_or(|since| {
            OffsetDateTime::parse(&event.time, &Rfc3339).is_ok_and(|t| t >= since)
        });
        time_ok
            && self
                .name
                .as_ref()
                .is_none_or(|n| event.name.as_ref() == Some(n))
            && self
                .workspace
                .as_ref()
                .is_none_or(|w| event.workspace.as_ref() == Some(w))
            && self
                .outcome
                .as_ref()
                .is_none_or(|o| event.outcome.eq_ignore_ascii_case(o))
    }
}

pub fn audit(ctx: &Ctx, args: AuditArgs) -> Result<(), Failure> {
    let filter = Filter {
        since: args.since.map(|ago| OffsetDateTime::now_utc() - ago),
        name: args
            .name
            .as_deref()
            .map(crate::context::name)
            .transpose()?
            .map(|n| n.as_str().to_owned()),
        workspace: ctx.given_workspace()?.map(|w| w.as_str().to_owned()),
        outcome: args.outcome,
    };
    let path = match args.file {
        Some(path) => path,
        None => log_path(ctx)?,
    };
    let mut printer = Printer {
        json: ctx.json,
        follow: args.follow,
        filter,
        rows: Vec::new(),
        skipped: 0,
    };
    let mut log = Log::open(path)?;
    log.read_lines(&mut printer)?;
    if !args.follow {
        return printer.finish();
    }
    printer.start_following()?;
    loop {
        std::thread::sleep(FOLLOW_POLL);
        log.reopen_if_replaced()?;
        log.read_lines(&mut printer)?;
    }
}

/// Asks the agent where its audit log is.
fn log_path(ctx: &Ctx) -> Result<PathBuf, Failure> {
    let status = ctx.connect()?.status()?;
    status.audit_log.map(PathBuf::from).ok_or_else(|| {
        Failure::refused(
            ErrorCode::InvalidRequest,
            "this agent keeps no audit log",
            "start avp-agent with --audit-log PATH, or read a log with --file PATH",
        )
    })
}

/// The log file and how far it has been read.
struct Log {
    path: PathBuf,
    file: File,
    /// Bytes after the last complete line, kept for the next read.
    partial: Vec<u8>,
}

impl Log {
    fn open(path: PathBuf) -> Result<Self, Failure> {
        let file = File::open(&path).map_err(|err| {
            Failure::io(format!("cannot open the audit log {}", path.display()), err)
        })?;
        Ok(Self {
            path,
            file,
            partial: Vec::new(),
        })
    }

    /// Starts over on a new file if the log was replaced or truncated (rotated).
    fn reopen_if_replaced(&mut self) -> Result<(), Failure> {
        let Ok(now) = std::fs::metadata(&self.path) else {
            return Ok(()); // between a rename and the new file: look again later
        };
        let open = self.file.metadata().map_err(|err| self.failed(err))?;
        let position = self
            .file
            .stream_position()
            .map_err(|err| self.failed(err))?;
        if now.ino() != open.ino() || now.dev() != open.dev() || now.len() < position {
            *self = Self::open(self.path.clone())?;
        }
        Ok(())
    }

    fn failed(&self, err: io::Error) -> Failure {
        Failure::io(
            format!("cannot read the audit log {}", self.path.display()),
            err,
        )
    }

    /// Reads what was appended and hands over each complete line.
    fn read_lines(&mut self, printer: &mut Printer) -> Result<(), Failure> {
        let mut chunk = Vec::new();
        self.file
            .read_to_end(&mut chunk)
            .map_err(|err| self.failed(err))?;
        self.partial.extend_from_slice(&chunk);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            printer.line(line)?;
        }
        Ok(())
    }
}

/// Prints matching lines: the JSON as is, or table rows (collected to align the columns,
/// or written as they come under `--follow`).
struct Printer {
    json: bool,
    follow: bool,
    filter: Filter,
    rows: Vec<Vec<String>>,
    /// Lines that are not audit events (not shown in the table).
    skipped: usize,
}

const HEADER: [&str; 6] = [
    "TIME",
    "OPERATION",
    "OUTCOME",
    "WORKSPACE",
    "NAME",
    "CLIENT",
];
/// Column widths while following (a table cannot be aligned on lines not yet written).
const FOLLOW_WIDTHS: [usize; 5] = [19, 17, 21, 16, 24];

impl Printer {
    fn line(&mut self, line: &[u8]) -> Result<(), Failure> {
        let event = serde_json::from_slice::<Event>(line).ok();
        let keep = match &event {
            Some(event) => self.filter.keeps(event),
            None => !self.filter.any(),
        };
        if !keep {
            return Ok(());
        }
        if self.json {
            let mut out = io::stdout().lock();
            return out
                .write_all(line)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .map_err(|err| Failure::io("cannot write to standard output", err));
        }
        let Some(event) = event else {
            self.skipped += 1;
            return Ok(());
        };
        let row = row(&event);
        if self.follow {
            return output::print(&fixed_line(&row));
        }
        self.rows.push(row);
        Ok(())
    }

    fn start_following(&mut self) -> Result<(), Failure> {
        if self.json {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut text = fixed_line(&HEADER.map(str::to_owned));
        for row in &rows {
            text.push_str(&fixed_line(row));
        }
        output::print(&text)
    }

    fn finish(self) -> Result<(), Failure> {
        if self.skipped > 0 {
            output::warn(&format!(
                "{} line(s) of the log are not audit events and are not shown (see them with --json)",
                self.skipped
            ));
        }
        if self.json {
            return Ok(());
        }
        if self.rows.is_empty() {
            output::note("no audit lines match");
            return Ok(());
        }
        output::print_table(&HEADER, &self.rows)
    }
}

/// An event's table cells. The time is shown to the second, in UTC like the log.
fn row(event: &Event) -> Vec<String> {
    let time = OffsetDateTime::parse(&event.time, &Rfc3339)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| event.time.clone());
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let client = match (&event.exe, event.pid, &event.reason) {
        (_, _, Some(reason)) => format!("(agent: {reason})"),
        (Some(exe), Some(pid), None) => format!("{exe} [{pid}]"),
        (Some(exe), None, None) => exe.clone(),
        (None, Some(pid), None) => format!("[{pid}]"),
        (None, None, None) => "-".to_owned(),
    };
    vec![
        time,
        event.operation.clone(),
        event.outcome.clone(),
        dash(&event.workspace),
        dash(&event.name),
        client,
    ]
}

/// A row with the `--follow` widths (a longer cell pushes the rest of its line along).
fn fixed_line(row: &[String]) -> String {
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        line.push_str(cell);
        if let Some(width) = FOLLOW_WIDTHS.get(i) {
            let pad = width.saturating_sub(cell.chars().count()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Event {
        serde_json::from_str(line).unwrap()
    }

    const LINE: &str = r#"{"time":"2030-01-31T12:00:00.123456789Z","operation":"RETRIEVE","workspace":"default","name":"API_KEY","outcome":"OK","uid":1000,"pid":42,"exe":"/usr/bin/avp"}"#;

    #[test]
    fn rows_show_the_second_and_the_client() {
        assert_eq!(
            row(&event(LINE)),
            [
                "2030-01-31 12:00:00",
                "RETRIEVE",
                "OK",
                "default",
                "API_KEY",
                "/usr/bin/avp [42]"
            ]
        );
    }

    #[test]
    fn filters_all_apply() {
        let e = event(LINE);
        let none = Filter {
            since: None,
            name: None,
            workspace: None,
            outcome: None,
        };
        assert!(none.keeps(&e));
        let by = |name: Option<&str>, workspace: Option<&str>, outcome: Option<&str>| Filter {
            since: None,
            name: name.map(str::to_owned),
            workspace: workspace.map(str::to_owned),
            outcome: outcome.map(str::to_owned),
        };
        assert!(by(Some("API_KEY"), Some("default"), Some("ok")).keeps(&e));
        assert!(!by(Some("OTHER"), None, None).keeps(&e));
        assert!(!by(None, Some("prod"), None).keeps(&e));
        assert!(!by(None, None, Some("SECRET_NOT_FOUND")).keeps(&e));
        let since = |t: &str| Filter {
            since: Some(OffsetDateTime::parse(t, &Rfc3339).unwrap()),
            ..by(None, None, None)
        };
        assert!(since("2030-01-31T11:00:00Z").keeps(&e));
        assert!(!since("2030-01-31T13:00:00Z").keeps(&e));
    }
}
