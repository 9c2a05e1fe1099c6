//! `avp-agent -- CMD`: CMD inherits no descriptor of the agent's (only 0, 1 and 2), so it
//! can neither write to the agent's internal pipes nor keep the agent alive by holding one.

use avp_protocol::{Passphrase, Request, Response, VaultState};
use avp_tests::{Conn, TEST_PASSPHRASE, TEST_WORK_FACTOR, agent_bin};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `avp-agent` on temporary paths under `dir`, running `sh -c script` as its command.
fn agent_running(dir: &Path, script: &str) -> Command {
    let mut command = Command::new(agent_bin());
    command
        .arg("--socket")
        .arg(dir.join("run/agent.sock"))
        .arg("--vault")
        .arg(dir.join("vault"))
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .args(["--", "sh", "-c", script])
        .env_remove("AVP_SOCK")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null());
    command
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn the_command_inherits_only_stdin_stdout_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let output = agent_running(dir.path(), "ls /proc/$$/fd")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut fds: Vec<u32> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|fd| fd.parse().expect("a descriptor number"))
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2], "descriptors of the agent leaked into CMD");
}

#[test]
fn sigterm_ends_the_agent_while_the_command_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The command reports its pid and then outlives the agent.
    let mut agent = agent_running(dir.path(), "echo $$; exec sleep 600")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(agent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let command = Pid::from_raw(line.trim().parse().expect("the command's pid"));
    let agent_pid = Pid::from_raw(agent.id() as i32);

    // The agent serves (the server starts before the command), and SIGUSR1 locks.
    let mut conn = Conn::raw(&dir.path().join("run/agent.sock"));
    conn.hello();
    let init = conn.call(&Request::Init {
        passphrase: Passphrase::new(TEST_PASSPHRASE),
        work_factor: Some(TEST_WORK_FACTOR),
    });
    assert!(matches!(init, Response::Initialized), "{init:?}");
    kill(agent_pid, Signal::SIGUSR1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.status().state != VaultState::Locked {
        assert!(Instant::now() < deadline, "SIGUSR1 did not lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(conn);

    kill(agent_pid, Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut agent, Duration::from_secs(15));
    let _ = kill(command, Signal::SIGKILL);
    if status.is_none() {
        let _ = agent.kill();
        let _ = agent.wait();
    }
    let status = status.expect("the agent exited on SIGTERM although CMD still ran");
    assert_eq!(status.code(), Some(0));
    assert!(
        !dir.path().join("run/agent.sock").exists(),
        "the socket was removed"
    );
}
