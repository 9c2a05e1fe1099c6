//! The agent goes away in the middle of a session: the next call gives a clear error at
//! once (no hang), and so does every call after it.

use avp_client::{AsyncClient, Client, Error, SecretName, SecretValue, StoreOptions, WorkspaceId};
use avp_tests::TestAgent;
use std::time::{Duration, Instant};

#[test]
fn a_killed_agent_gives_disconnected_not_a_hang() {
    let mut agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    let session = client
        .authenticate(&WorkspaceId::default_workspace())
        .unwrap();
    let name = SecretName::new("A").unwrap();
    client
        .store(
            &session,
            &name,
            SecretValue::from_slice(b"x"),
            StoreOptions::default(),
        )
        .unwrap();
    agent.kill();
    let started = Instant::now();
    let err = client.retrieve(&session, &name, None).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    assert!(err.is_unreachable());
    let text = err.to_string();
    assert!(text.contains(&agent.socket.display().to_string()), "{text}");
    assert!(
        text.contains("avp-agent --daemon"),
        "says how to start one: {text}"
    );
    let err = client.status().unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    // A new connection finds no agent.
    let err = Client::connect_to(&agent.socket).unwrap_err();
    assert!(matches!(err, Error::NoAgent { .. }), "{err:?}");
}

#[tokio::test]
async fn a_killed_agent_gives_disconnected_async() {
    let mut agent = TestAgent::start_initialized();
    let mut client = AsyncClient::connect_to(&agent.socket).await.unwrap();
    let session = client
        .authenticate(&WorkspaceId::default_workspace())
        .await
        .unwrap();
    agent.kill();
    let started = Instant::now();
    let err = client
        .history(&session, &SecretName::new("A").unwrap())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    let err = client.discover().await.unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
}

#[test]
fn a_stopped_agent_times_out() {
    let agent = TestAgent::start_initialized();
    let mut client = Client::connect_to(&agent.socket).unwrap();
    client.set_timeout(Duration::from_millis(500)).unwrap();
    agent.signal(nix::sys::signal::Signal::SIGSTOP);
    wait_until_stopped(agent.pid());
    let started = Instant::now();
    let err = client.status().unwrap_err();
    agent.signal(nix::sys::signal::Signal::SIGCONT);
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// SIGSTOP is asynchronous: waits until the kernel reports every thread of the process
/// stopped (`T`).
fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let stopped = |stat: &str| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            == Some('T')
    };
    loop {
        let all_stopped = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(Result::ok)
            .all(|task| {
                std::fs::read_to_string(task.path().join("stat")).is_ok_and(|s| stopped(&s))
            });
        if all_stopped {
            return;
        }
        assert!(Instant::now() < deadline, "agent {pid} never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
}
