//! `get --clip`: the value goes to the clipboard instead of stdout, and is cleared after a
//! delay if the clipboard still holds it — as `pass -c` does.
//!
//! - The tool is the session's: `wl-copy`/`wl-paste` under Wayland (`WAYLAND_DISPLAY`),
//!   else `xclip`, else `xsel` under X11 (`DISPLAY`).
//! - The value reaches the tool on its standard input, never in argv (which any local user
//!   can read in `/proc`).
//! - The clearing is done by a detached `avp __clip-clear` (its own process group, so the
//!   terminal's Ctrl-C does not stop it, and no descriptor of ours): it takes the value on
//!   its stdin, waits, reads the clipboard back and clears it only if it still holds the
//!   value — something the user copied meanwhile is left alone. It never prints either.

use crate::cli::ClipClearArgs;
use crate::fail::Failure;
use crate::{input, output};
use avp_client::ErrorCode;
use serde_json::json;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use zeroize::Zeroizing;

/// A clipboard program pair: how to copy, read back and clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Wayland: wl-clipboard.
    WlCopy,
    /// X11: xclip, on the CLIPBOARD selection.
    Xclip,
    /// X11: xsel, on the CLIPBOARD selection.
    Xsel,
}

impl Tool {
    /// The program's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::WlCopy => "wl-copy",
            Self::Xclip => "xclip",
            Self::Xsel => "xsel",
        }
    }

    /// Copies its standard input.
    fn copy(self) -> Command {
        match self {
            Self::WlCopy => Command::new("wl-copy"),
            Self::Xclip => with_args("xclip", &["-selection", "clipboard", "-in"]),
            Self::Xsel => with_args("xsel", &["--clipboard", "--input"]),
        }
    }

    /// Prints the clipboard.
    fn paste(self) -> Command {
        match self {
            Self::WlCopy => with_args("wl-paste", &["--no-newline"]),
            Self::Xclip => with_args("xclip", &["-selection", "clipboard", "-out"]),
            Self::Xsel => with_args("xsel", &["--clipboard", "--output"]),
        }
    }

    /// Empties the clipboard (xclip has no clear: it takes ownership with empty content).
    fn clear(self) -> Command {
        match self {
            Self::WlCopy => with_args("wl-copy", &["--clear"]),
            Self::Xclip => self.copy(),
            Self::Xsel => with_args("xsel", &["--clipboard", "--clear"]),
        }
    }
}

fn with_args(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

/// The first directory of `PATH` holding an executable `program`.
fn in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// The session's clipboard tool, if it has one installed.
pub fn detect() -> Option<Tool> {
    let wayland = set("WAYLAND_DISPLAY") && in_path("wl-copy").is_some();
    let x11 = set("DISPLAY");
    if wayland {
        Some(Tool::WlCopy)
    } else if x11 && in_path("xclip").is_some() {
        Some(Tool::Xclip)
    } else if x11 && in_path("xsel").is_some() {
        Some(Tool::Xsel)
    } else {
        None
    }
}

/// The refusal when the session has no clipboard avp can use.
pub fn no_tool() -> Failure {
    Failure::refused(
        ErrorCode::InvalidRequest,
        "no clipboard to copy to: needs WAYLAND_DISPLAY with wl-copy, or DISPLAY with xclip or xsel",
        "install wl-clipboard (Wayland) or xclip (X11) in a graphical session, or print the value without --clip",
    )
}

/// Runs `command` with `input` on its standard input and its output discarded; the tools
/// fork a server that keeps the selection, so their own process exits at once.
fn feed(mut command: Command, input: &[u8], tool: Tool) -> Result<(), Failure> {
    let context = || format!("cannot run {}", tool.name());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| Failure::io(context(), err))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(input);
    drop(stdin);
    let status = child.wait().map_err(|err| Failure::io(context(), err))?;
    written.map_err(|err| Failure::io(context(), err))?;
    if !status.success() {
        return Err(Failure::io(
            context(),
            io::Error::other(format!("{} exited with {status}", tool.name())),
        ));
    }
    Ok(())
}

/// Copies `value` to the clipboard with `tool`.
pub fn copy(tool: Tool, value: &[u8]) -> Result<(), Failure> {
    feed(tool.copy(), value, tool)
}

/// Starts the detached clearer for `value` and returns its pid.
pub fn schedule_clear(value: &[u8], after: Duration) -> Result<u32, Failure> {
    let context = "cannot start the clipboard clearer";
    let exe = std::env::current_exe().map_err(|err| Failure::io(context, err))?;
    let mut child = Command::new(exe)
        .arg("__clip-clear")
        .arg("--after")
        .arg(after.as_secs().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C at the terminal after `get -c` must not stop it.
        .process_group(0)
        .spawn()
        .map_err(|err| Failure::io(context, err))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(value)
        .map_err(|err| Failure::io(context, err))?;
    // Not waited for: it outlives us, and init reaps it.
    Ok(child.id())
}

/// What the clipboard holds now, in a wiped buffer; `None` when it cannot be read (or is
/// empty for a tool that fails on an empty selection).
fn read_back(tool: Tool) -> Option<Zeroizing<Vec<u8>>> {
    let output = tool
        .paste()
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let output = output.ok()?;
    let bytes = Zeroizing::new(output.stdout);
    output.status.success().then_some(bytes)
}

/// `get --clip`: copies with `tool` (from [`detect`], checked before the value is fetched), schedules the clearing, and says so (the value is never printed).
pub fn get_to_clipboard(
    json: bool,
    tool: Tool,
    name: &str,
    value: &[u8],
    clear_after: Duration,
) -> Result<(), Failure> {
    copy(tool, value)?;
    let clearer = if clear_after.is_zero() {
        None
    } else {
        Some(schedule_clear(value, clear_after)?)
    };
    if json {
        return output::print_json(&json!({
            "name": name,
            "copied": true,
            "tool": tool.name(),
            "clear_after_seconds": clearer.map(|_| clear_after.as_secs()),
            "clearer_pid": clearer,
        }));
    }
    let when = match clearer {
        Some(_) => format!(
            "it is cleared in {} if it still holds it",
            humantime::format_duration(clear_after)
        ),
        None => "it is not cleared (--clear-after 0)".to_owned(),
    };
    output::print(&format!(
        "copied {name} to the clipboard ({}); {when}\n",
        tool.name()
    ))
}

/// `avp __clip-clear --after N`: the clearer. Silent whatever happens.
pub fn clear_later(args: ClipClearArgs) -> Result<(), Failure> {
    // More than a value can be is not ours to compare: leave the clipboard alone.
    let Some(value) = input::all_of_stdin(input::max_value_len())? else {
        return Ok(());
    };
    std::thread::sleep(Duration::from_secs(args.after));
    let Some(tool) = detect() else {
        return Ok(());
    };
    let still_ours = read_back(tool).is_some_and(|held| held.as_slice() == value.as_slice());
    if still_ours {
        feed(tool.clear(), b"", tool)?;
    }
    Ok(())
}
