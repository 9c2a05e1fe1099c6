//! Another user: even when the socket file is open to everyone (a mistaken `chmod`, a
//! shared directory), a client running as another uid is refused by the `SO_PEERCRED`
//! check with `PERMISSION_DENIED`, learns nothing else, and the refusal is audited.
//!
//! The client is `avp-probe` (tests/src/bin) run through `setpriv` as uid/gid 65534.

use avp_protocol::Response;
use avp_tests::TestAgent;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const OTHER_UID: u32 = 65_534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs the probe as uid/gid 65534 with no supplementary groups; returns its one line.
fn probe_as_other_user(probe: &Path, socket: &Path, json: bool) -> String {
    let output = Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER_UID}"),
            &format!("--regid={OTHER_UID}"),
            "--clear-groups",
        ])
        .arg(probe)
        .args(json.then_some("--json"))
        .arg(socket)
        .output()
        .expect("run setpriv (util-linux)");
    assert!(
        output.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn another_uid_is_refused_even_with_the_socket_open_and_the_refusal_is_audited() {
    avp_tests::require_root!("it runs a client as another uid");
    let agent = TestAgent::start_initialized();
    // Open the way to the socket for everyone: the directories traversable, the socket
    // writable (connecting to a Unix socket takes write permission on it). The agent checked
    // its directory at start; this is the mistake made afterwards.
    chmod(agent.dir.path(), 0o711);
    chmod(agent.socket.parent().unwrap(), 0o711);
    chmod(&agent.socket, 0o666);
    // The probe must be reachable by the other user too, wherever the build tree lives.
    let probe = agent.dir.path().join("avp-probe");
    std::fs::copy(env!("CARGO_BIN_EXE_avp-probe"), &probe).unwrap();
    chmod(&probe, 0o755);

    // Sanity: the probe as the agent's own user is served.
    let own = Command::new(&probe).arg(&agent.socket).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "hello");

    let answer = probe_as_other_user(&probe, &agent.socket, false);
    assert_eq!(answer, "error PERMISSION_DENIED");
    // The same on the JSON wire: a JSON line when the agent saw `{` first, else the bincode
    // frame a JSON client reads as §12.1.2 says; the code is the same either way.
    let own = Command::new(&probe)
        .arg("--json")
        .arg(&agent.socket)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "hello");
    let answer = probe_as_other_user(&probe, &agent.socket, true);
    assert_eq!(answer, "error PERMISSION_DENIED");

    // The refusal is in the audit log: a CONNECT decision, PERMISSION_DENIED, the other uid.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let audit = std::fs::read_to_string(&agent.audit_log).unwrap_or_default();
        let found = audit.lines().find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            (event["operation"] == "CONNECT" && event["outcome"] == "PERMISSION_DENIED")
                .then_some(event)
        });
        if let Some(event) = found {
            break event;
        }
        assert!(
            Instant::now() < deadline,
            "no CONNECT refusal audited:\n{audit}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(line["uid"], OTHER_UID, "{line}");
    assert!(line["pid"].is_u64(), "the peer's pid is recorded: {line}");

    // The agent is unharmed and still serves its own user.
    let mut conn = agent.connect();
    let session = conn.session("default");
    assert!(matches!(
        conn.store(&session, "still", b"here"),
        Response::Stored(_)
    ));
}
