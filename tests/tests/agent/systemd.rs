//! systemd integration, for real: socket activation through `systemd-socket-activate`, the
//! readiness notification on a `NOTIFY_SOCKET` we listen on, and `systemd-analyze verify`
//! on the units the agent installs.

use avp_protocol::{Request, Response};
use avp_tests::{AgentOptions, Conn, TestAgent, agent_bin};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tool(name: &str) -> std::path::PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is missing: install Debian's systemd package (.ci/run does)");
}

fn connect_with_retry(socket: &Path) -> Conn {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if socket.exists() {
            let mut conn = Conn::raw(socket);
            conn.hello();
            return conn;
        }
        assert!(
            Instant::now() < deadline,
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn socket_activation_adopts_fd_3_serves_and_never_unlinks_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let mut activator = Command::new(tool("systemd-socket-activate"))
        .arg("-l")
        .arg(&socket)
        .arg(agent_bin())
        .arg("--vault")
        .arg(dir.path().join("vault"))
        .arg("--audit-log")
        .arg(dir.path().join("audit.jsonl"))
        .env("AVP_LOG", "debug")
        .env_remove("AVP_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-socket-activate");
    // The first connection makes systemd-socket-activate exec the agent with the socket.
    let mut conn = connect_with_retry(&socket);
    match conn.call(&Request::Discover) {
        Response::Discover(info) => assert_eq!(info.backend.name, "vault"),
        other => panic!("{other:?}"),
    }
    let agent_pid = nix::unistd::Pid::from_raw(activator.id() as i32);
    nix::sys::signal::kill(agent_pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = activator.wait().unwrap();
    let mut log = String::new();
    use std::io::Read;
    activator
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "agent exit: {status}\n{log}");
    assert!(log.contains("adopted the socket from systemd"), "{log}");
    assert!(
        socket.exists(),
        "a socket systemd owns must not be unlinked"
    );
}

#[test]
fn a_listen_pid_for_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(agent_bin())
        .arg("--socket")
        .arg(dir.path().join("run/agent.sock"))
        .arg("--vault")
        .arg(dir.path().join("vault"))
        .arg("--audit-log")
        .arg(dir.path().join("audit.jsonl"))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .env_remove("AVP_SOCK")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LISTEN_PID (1) is not this process"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("run/agent.sock").exists(),
        "it did not bind a socket of its own"
    );
}

#[test]
fn ready_is_notified_after_the_socket_accepts_connections() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("NOTIFY_SOCKET".into(), notify_path.display().to_string())],
        ..Default::default()
    });
    let mut buf = [0u8; 512];
    let len = notify.recv(&mut buf).expect("a notification");
    let message = String::from_utf8_lossy(&buf[..len]).into_owned();
    assert!(message.lines().any(|l| l == "READY=1"), "{message}");
    assert!(message.lines().any(|l| l == "STATUS=locked"), "{message}");
    // READY=1 came after listening: the socket accepts right away, no retry needed.
    let mut conn = Conn::raw(&agent.socket);
    conn.hello();
    agent.init();
    let len = notify.recv(&mut buf).expect("a status update");
    assert_eq!(&buf[..len], b"STATUS=unlocked\n");
}

#[test]
fn the_installed_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(agent_bin())
        .arg("--install-units")
        .arg("--units-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let service = std::fs::read_to_string(dir.path().join("avp-agent.service")).unwrap();
    let exec = format!("ExecStart={}", agent_bin().display());
    assert!(service.contains(&exec), "{service}");
    // `--man=no`: verify would run `man` for each `Documentation=man:` page, and the pages
    // are installed by the install path, not present here
    // (`repo::no_placeholder_urls` pins what the units cite).
    let verify = Command::new(tool("systemd-analyze"))
        .arg("verify")
        .arg("--man=no")
        .arg(dir.path().join("avp-agent.socket"))
        .arg(dir.path().join("avp-agent.service"))
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let printed = Command::new(agent_bin())
        .arg("--print-units")
        .output()
        .unwrap();
    let text = String::from_utf8(printed.stdout).unwrap();
    assert!(text.contains("# avp-agent.socket\n") && text.contains(&exec));
}

#[test]
fn the_service_sandbox_leaves_the_system_bus_reachable() {
    // The agent follows logind on /run/dbus/system_bus_socket (lock on sleep and screen
    // lock): the unit must allow Unix sockets and must not hide /run/dbus.
    let printed = Command::new(agent_bin())
        .arg("--print-units")
        .output()
        .unwrap();
    let units = String::from_utf8(printed.stdout).unwrap();
    let settings: Vec<(&str, &str)> = units
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect();
    let values = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    };
    let families = values("RestrictAddressFamilies");
    assert!(
        families
            .iter()
            .all(|v| !v.starts_with('~') && v.split_whitespace().any(|f| f == "AF_UNIX")),
        "{families:?}"
    );
    for hiding in ["InaccessiblePaths", "TemporaryFileSystem", "BindPaths"] {
        assert!(
            values(hiding).iter().all(|v| !v.contains("/run")),
            "{hiding}= hides /run/dbus: {units}"
        );
    }
    assert!(
        values("SystemCallFilter").contains(&"@system-service"),
        "socket, connect and sendmsg come from @system-service: {units}"
    );
}
