//! `eval "$(avp-agent --daemon)"` succeeds only when the agent it started is ready: another
//! agent answering on the socket does not count, and the background agent's own error
//! reaches the user.

use avp_protocol::{Request, Response};
use avp_tests::{TestAgent, agent_bin};
use std::process::{Command, Stdio};

#[test]
fn daemon_mode_fails_with_the_childs_error_when_an_agent_already_serves() {
    let agent = TestAgent::start_initialized();
    let other = tempfile::tempdir().unwrap();
    let output = Command::new(agent_bin())
        .arg("--socket")
        .arg(&agent.socket)
        .arg("--vault")
        .arg(other.path().join("vault"))
        .arg("--audit-log")
        .arg(other.path().join("audit"))
        .arg("--daemon")
        .env_remove("AVP_SOCK")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.is_empty(),
        "no shell lines for a dead agent: {stdout}"
    );
    let holder = format!("another avp-agent (pid {}) is already serving", agent.pid());
    assert!(stderr.contains(&holder), "the child's error: {stderr}");
    let mut conn = agent.connect();
    assert!(
        matches!(conn.call(&Request::Discover), Response::Discover(_)),
        "the first agent is unharmed"
    );
}
