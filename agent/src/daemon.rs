//! How the agent is launched and reports on itself: systemd notifications, `--daemon`
//! (ssh-agent style) and `avp-agent -- CMD`.
//!
//! `--daemon` does not `fork` a process that may already hold threads: it starts a fresh
//! copy of itself in the foreground mode in a new session, waits until that copy reports
//! itself ready (or fails, in which case its error is shown and the launcher exits 1),
//! prints the shell lines and exits. The copy's standard output is the readiness pipe: once
//! listening it detaches its standard error, writes [`READY_LINE`] and detaches its
//! standard output. The launcher waits for that line from its own child rather than for the
//! socket to answer: another agent already answering there must not pass for this one.

use crate::cli::{Args, Paths};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the background copy started by `--daemon`.
pub const DAEMON_CHILD_ENV: &str = "AVP_AGENT_DAEMON_CHILD";

/// How long `--daemon` waits for the background agent to report itself ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the background copy writes to its standard output once it is listening.
const READY_LINE: &[u8] = b"ready\n";

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

/// In the background copy, once listening: stop writing to the launcher's stderr pipe,
/// then tell the launcher we are ready and close the readiness pipe (stdout).
pub fn report_ready() {
    let null = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(null) => null,
        Err(err) => {
            tracing::debug!(%err, "cannot open /dev/null");
            return;
        }
    };
    let _ = nix::unistd::dup2_stderr(&null);
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_all(READY_LINE).and_then(|()| stdout.flush()) {
        tracing::debug!(%err, "cannot report readiness");
    }
    let _ = nix::unistd::dup2_stdout(&null);
}

/// `--daemon`: starts the agent in the background and prints the shell lines that point
/// `AVP_SOCK` at it. Fails (exit 1, with the background agent's own error) unless that
/// agent reports itself ready.
pub fn launch_background(args: &Args, paths: &Paths) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the avp-agent executable")?;
    let mut child = Command::new(exe)
        .args(foreground_args())
        .arg("--socket")
        .arg(&paths.socket)
        .env(DAEMON_CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start avp-agent in the background")?;
    let ready_pipe = child.stdout.take().context("no stdout pipe")?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    // Read the child's stderr as it comes, so its log can never fill the pipe and stall it.
    let relay = std::thread::spawn(move || {
        let mut why = Vec::new();
        let _ = stderr.read_to_end(&mut why);
        why
    });
    match wait_ready(ready_pipe, START_TIMEOUT) {
        Ok(true) => {
            print!("{}", shell_lines(&paths.socket, child.id(), args.csh));
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => {
            let status = child.wait()?;
            let why = relay.join().unwrap_or_default();
            eprint!("{}", String::from_utf8_lossy(&why));
            bail!("the background agent exited ({status}) without starting");
        }
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Waits for [`READY_LINE`] on the child's stdout: `Ok(false)` if the child closed it
/// without (it exited), an error after `within`.
fn wait_ready(mut pipe: std::process::ChildStdout, within: Duration) -> Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "the background agent did not start listening within {} s",
                within.as_secs()
            );
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(err) => return Err(err).context("cannot wait for the background agent"),
        }
        let mut buf = [0u8; 64];
        let n = pipe
            .read(&mut buf)
            .context("cannot read from the background agent")?;
        if n == 0 {
            return Ok(false);
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(READY_LINE.len()).any(|w| w == READY_LINE) {
            return Ok(true);
        }
    }
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
