//! How the agent is launched and reports on itself: systemd notifications, `--daemon`
//! (ssh-agent style) and `avp-agent -- CMD`.
//!
//! `--daemon` does not `fork` a process that may already hold threads: it starts a fresh
//! copy of itself in the foreground mode in a new session, waits until that copy's socket
//! answers (or it fails, in which case its error is shown), prints the shell lines and
//! exits. The copy detaches its standard error once it is ready.

use crate::cli::{Args, Paths};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the background copy started by `--daemon`.
pub const DAEMON_CHILD_ENV: &str = "AVP_AGENT_DAEMON_CHILD";

/// How long `--daemon` waits for the background agent to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Tells systemd (when it started us) that the socket is listening.
pub fn notify_ready(locked: bool) {
    let status = format!("STATUS={}", if locked { "locked" } else { "unlocked" });
    let states = [
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Custom(&status),
    ];
    if let Err(err) = sd_notify::notify(false, &states) {
        tracing::warn!(%err, "cannot notify systemd of readiness");
    }
}

/// Updates the status line systemd shows (`systemctl --user status avp-agent`).
pub fn notify_status(status: &str) {
    let line = format!("STATUS={status}");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Custom(&line)]);
}

/// Tells systemd the agent is stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}

/// True in the background copy started by `--daemon`.
pub fn is_daemon_child() -> bool {
    std::env::var_os(DAEMON_CHILD_ENV).is_some()
}

/// In the background copy: leave the terminal's session so its hangup does not reach us.
pub fn detach_session() {
    if let Err(err) = nix::unistd::setsid() {
        tracing::debug!(%err, "setsid failed");
    }
}

/// In the background copy, once listening: stop writing to the launcher's pipe.
pub fn detach_stderr() {
    match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(null) => {
            let _ = nix::unistd::dup2_stderr(&null);
        }
        Err(err) => tracing::debug!(%err, "cannot open /dev/null"),
    }
}

/// `--daemon`: starts the agent in the background and prints the shell lines that point
/// `AVP_SOCK` at it.
pub fn launch_background(args: &Args, paths: &Paths) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the avp-agent executable")?;
    let mut child = Command::new(exe)
        .args(foreground_args())
        .arg("--socket")
        .arg(&paths.socket)
        .env(DAEMON_CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start avp-agent in the background")?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut why = String::new();
            let _ = stderr.read_to_string(&mut why);
            eprint!("{why}");
            bail!("the background agent exited ({status}) before listening");
        }
        if UnixStream::connect(&paths.socket).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the background agent did not start listening within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    print!("{}", shell_lines(&paths.socket, child.id(), args.csh));
    Ok(ExitCode::SUCCESS)
}

/// The process's own arguments without the `--daemon`/`-d`/`-c`/`-s` launcher flags and
/// without `--socket` (passed again, resolved).
fn foreground_args() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        match text.as_ref() {
            "--daemon" => {}
            // Short launcher flags, alone or combined (`-dc`).
            _ if text.len() > 1
                && text.starts_with('-')
                && !text.starts_with("--")
                && text[1..].bytes().all(|b| b"dcs".contains(&b)) => {}
            "--socket" => {
                args.next();
            }
            _ if text.starts_with("--socket=") => {}
            _ => out.push(arg),
        }
    }
    out
}

fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%".contains(&b));
    if safe {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What `--daemon` prints, like ssh-agent: Bourne shell, or C shell with `-c`.
pub fn shell_lines(socket: &Path, pid: u32, csh: bool) -> String {
    let socket = shell_quote(socket);
    if csh {
        format!("setenv AVP_SOCK {socket};\nsetenv AVP_AGENT_PID {pid};\necho Agent pid {pid};\n")
    } else {
        format!(
            "AVP_SOCK={socket}; export AVP_SOCK;\nAVP_AGENT_PID={pid}; export AVP_AGENT_PID;\n\
             echo Agent pid {pid};\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_match_ssh_agent_style() {
        let sh = shell_lines(Path::new("/run/user/1000/avp/agent.sock"), 42, false);
        assert_eq!(
            sh,
            "AVP_SOCK=/run/user/1000/avp/agent.sock; export AVP_SOCK;\n\
             AVP_AGENT_PID=42; export AVP_AGENT_PID;\necho Agent pid 42;\n"
        );
        let csh = shell_lines(Path::new("/tmp/a b/agent.sock"), 7, true);
        assert!(
            csh.starts_with("setenv AVP_SOCK '/tmp/a b/agent.sock';\n"),
            "{csh}"
        );
    }
}
