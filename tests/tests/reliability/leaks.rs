//! No leaks, from the outside: after LOCK, no copy of a secret value or of the passphrase is
//! left anywhere in the agent's memory (every readable mapping, read through
//! `/proc/<pid>/mem`), even while the connections that carried them stay open; markers never
//! reach the command line or environment of the agent; STATUS reports the hardening the
//! kernel really applied. With the `avp` CLI: every command run with marker values leaves
//! them in no log line, audit line, error message, vault file or argv.
//!
//! Reading another process's memory takes root (the agent is not dumpable), as in CI.
//! agent_leaks.rs covers the vault files, the log and the audit log at the wire level.

use avp_protocol::{Passphrase, Request, Response};
use avp_tests::json::Codec;
use avp_tests::require_root;
use avp_tests::rng::Rng;
use avp_tests::sys::scan_memory;
use avp_tests::{AgentOptions, Conn, TestAgent};

/// A marker no binary or library contains: random per run.
fn marker(rng: &mut Rng, what: &str) -> String {
    format!("{what}{:016x}", rng.next_u64())
}

fn assert_absent(pid: u32, needle: &str, when: &str) {
    let hits = scan_memory(pid, needle.as_bytes());
    assert!(
        hits.is_empty(),
        "{when}: {needle} still in the agent's memory:\n{}",
        hits.join("\n")
    );
}

fn proc_file(pid: u32, name: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{name}")).unwrap()
}

#[test]
fn after_lock_no_value_or_passphrase_is_left_in_the_agents_memory() {
    require_root!("it reads a non-dumpable process's memory");
    no_secret_left_after_lock(Codec::Bincode);
}

/// The same with every request on the JSON wire (PROTOCOL.md §12): the line buffers, the
/// base64 text of values (both ways) and the parsed passphrases are copies to wipe too.
#[test]
fn after_lock_nothing_sent_over_json_is_left_in_the_agents_memory() {
    require_root!("it reads a non-dumpable process's memory");
    no_secret_left_after_lock(Codec::Json);
}

/// The base64 text (PROTOCOL.md §12.5.3) of the longest prefix of `text` that encodes on
/// its own: it appears in the base64 of any value that starts with `text`.
fn base64_of(text: &str) -> String {
    use base64::Engine;
    let bytes = text.as_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 3 * 3])
}

fn no_secret_left_after_lock(codec: Codec) {
    let connect = |agent: &TestAgent| match codec {
        Codec::Bincode => agent.connect(),
        Codec::Json => agent.connect_json(),
    };
    let mut rng = Rng::from_env("leaks");
    let value = marker(&mut rng, "VALUEMARK");
    let large_value = marker(&mut rng, "LARGEMARK");
    let rotated = marker(&mut rng, "ROTATEDMARK");
    let passphrase = marker(&mut rng, "PASSMARK");
    // Values travel as base64 on the JSON wire: that text is a copy of the secret too.
    let encoded: Vec<String> = [&value, &large_value, &rotated]
        .iter()
        .map(|v| base64_of(v))
        .collect();
    let markers: Vec<&String> = [&value, &large_value, &rotated, &passphrase]
        .into_iter()
        .chain(&encoded)
        .collect();
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("AVP_LOG".into(), "trace".into())],
        ..Default::default()
    });
    let pid = agent.pid();
    let mut admin = connect(&agent);
    let init = admin.call(&Request::Init {
        passphrase: Passphrase::new(&passphrase),
        work_factor: Some(10),
    });
    assert!(matches!(init, Response::Initialized));
    let session = admin.session("default");
    // Each secret-carrying request on a connection of its own that then stays open and
    // quiet: whatever the agent keeps per connection must not keep the secret.
    let mut idle: Vec<Conn> = Vec::new();
    let mut carrier = |agent: &TestAgent, request: Request| {
        let mut conn = connect(agent);
        let answer = conn.call(&request);
        assert!(!matches!(answer, Response::Error(_)), "{answer:?}");
        idle.push(conn);
    };
    let large = format!("{large_value}{}", "L".repeat(60_000));
    for (name, v) in [("small", value.as_str()), ("large", large.as_str())] {
        carrier(
            &agent,
            Request::Store {
                session: session.clone(),
                name: avp_tests::wire::name(name),
                value: avp_protocol::SecretValue::from_slice(v.as_bytes()),
                labels: None,
                expires_at: avp_protocol::ExpiryChange::Keep,
            },
        );
    }
    carrier(
        &agent,
        Request::Rotate {
            session: session.clone(),
            name: avp_tests::wire::name("small"),
            value: avp_protocol::SecretValue::from_slice(rotated.as_bytes()),
        },
    );
    // Values travel back too: a RETRIEVE of each version.
    assert_eq!(admin.value(&session, "large").unwrap(), large.as_bytes());
    assert!(matches!(
        admin.retrieve(&session, "small", Some(1)),
        Response::Retrieved(_)
    ));
    let _ = admin.names(&session);
    let _ = admin.history(&session, "small");
    // A lock/unlock cycle: the passphrase travels again, the values are decrypted again.
    assert!(matches!(admin.lock(), Response::Locked));
    carrier(
        &agent,
        Request::Unlock {
            passphrase: Passphrase::new(&passphrase),
        },
    );
    let session = admin.session("default");
    assert_eq!(admin.value(&session, "small").unwrap(), rotated.as_bytes());

    // While unlocked the plaintext is in memory, in locked pages: the scan finds it (which
    // shows the scan works) and STATUS reports the hardening.
    assert!(
        !scan_memory(pid, rotated.as_bytes()).is_empty(),
        "the scan sees the vault"
    );
    let status = admin.status();
    assert!(!status.hardening.dumpable, "{status:?}");
    assert_eq!(status.hardening.core_limit, 0);
    assert!(status.hardening.locked_memory_bytes > 0, "{status:?}");

    assert!(matches!(admin.lock(), Response::Locked));
    for needle in &markers {
        assert_absent(pid, needle, "after LOCK, the connections still open");
    }
    drop(idle);
    drop(admin);
    for needle in &markers {
        assert_absent(pid, needle, "after the connections closed");
    }
    for file in ["cmdline", "environ"] {
        let bytes = String::from_utf8_lossy(&proc_file(pid, file)).into_owned();
        for needle in &markers {
            assert!(
                !bytes.contains(needle.as_str()),
                "{needle} in /proc/<agent>/{file}"
            );
        }
    }
    let logs = agent.logs();
    assert!(logs.contains("TRACE"), "the log really is at trace level");
    for needle in &markers {
        assert!(!logs.contains(needle.as_str()), "{needle} in the log");
    }
    // The same agent still works with a new connection.
    let mut conn = agent.connect();
    assert!(matches!(
        conn.call(&Request::Discover),
        Response::Discover(_)
    ));
}

/// Runs `avp ARGS` with `stdin`; returns (exit code, stdout, stderr).
fn avp(agent: &TestAgent, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let output = avp_tests::cli::run(agent, args, stdin);
    (
        avp_tests::cli::code(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_cli_command_keeps_markers_out_of_logs_audit_errors_files_and_memory() {
    require_root!("it reads a non-dumpable process's memory");
    let mut rng = Rng::from_env("cli-leaks");
    let pass = marker(&mut rng, "CLIPASS");
    let new_pass = marker(&mut rng, "CLINEWPASS");
    let wrong_pass = marker(&mut rng, "CLIWRONGPASS");
    let values: Vec<String> = [
        "CLIVALUE",
        "CLILABELLED",
        "CLIEXPIRING",
        "CLIROTATED",
        "CLIIMPORTED",
    ]
    .iter()
    .map(|m| marker(&mut rng, m))
    .collect();
    let too_big = marker(&mut rng, "CLITOOBIG");
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("AVP_LOG".into(), "trace".into())],
        ..Default::default()
    });
    let line = |s: &str| format!("{s}\n").into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import.env");
    std::fs::write(&import, format!("IMPORTED={}\n", values[4])).unwrap();
    let export = dir.path().join("export.json");
    let (import, export) = (import.to_str().unwrap(), export.to_str().unwrap());

    // (command, stdin, expected exit code, whether stdout may show a value by design)
    let steps: Vec<(Vec<&str>, Vec<u8>, i32, bool)> = vec![
        (
            vec!["init", "--passphrase-stdin", "--work-factor", "10"],
            line(&pass),
            0,
            false,
        ),
        (
            vec!["set", "PLAIN", "-"],
            values[0].clone().into_bytes(),
            0,
            false,
        ),
        (
            vec!["set", "LABELLED", "-", "--label", "env=prod"],
            values[1].clone().into_bytes(),
            0,
            false,
        ),
        (
            vec!["set", "EXPIRING", "-", "--expires-in", "1h"],
            values[2].clone().into_bytes(),
            0,
            false,
        ),
        (
            vec!["rotate", "PLAIN", "-"],
            values[3].clone().into_bytes(),
            0,
            false,
        ),
        (vec!["rotate", "LABELLED", "--generate"], vec![], 0, false),
        (
            vec!["import", import, "--format", "dotenv"],
            vec![],
            0,
            false,
        ),
        (vec!["get", "PLAIN"], vec![], 0, true),
        (
            vec!["--json", "get", "PLAIN", "--version", "1"],
            vec![],
            0,
            true,
        ),
        (vec!["ls"], vec![], 0, false),
        (
            vec!["--json", "ls", "--label", "env=prod"],
            vec![],
            0,
            false,
        ),
        (vec!["history", "PLAIN"], vec![], 0, false),
        (
            vec!["export", "--format", "json", "-o", export],
            vec![],
            0,
            false,
        ),
        (vec!["export", "--format", "dotenv"], vec![], 0, true),
        (
            vec!["run", "--only", "PLAIN", "--", "printenv", "PLAIN"],
            vec![],
            0,
            true,
        ),
        (
            vec!["set", "BIG", "-"],
            too_big.repeat(3_000).into_bytes(),
            1,
            false,
        ),
        (vec!["rm", "EXPIRING"], vec![], 0, false),
        (vec!["rm", "MISSING"], vec![], 1, false),
        (vec!["rm", "-f", "MISSING"], vec![], 0, false),
        (vec!["status"], vec![], 0, false),
        (vec!["--json", "status"], vec![], 0, false),
        (vec!["discover"], vec![], 0, false),
        (vec!["lock"], vec![], 0, false),
        (vec!["get", "PLAIN"], vec![], 4, false),
        (
            vec!["unlock", "--passphrase-stdin"],
            line(&wrong_pass),
            1,
            false,
        ),
        (vec!["unlock", "--passphrase-stdin"], line(&pass), 0, false),
        (
            vec!["passwd", "--passphrase-stdin"],
            format!("{wrong_pass}\n{new_pass}\n").into_bytes(),
            1,
            false,
        ),
        (
            vec!["passwd", "--passphrase-stdin"],
            format!("{pass}\n{new_pass}\n").into_bytes(),
            0,
            false,
        ),
        (vec!["lock"], vec![], 0, false),
    ];
    let secrets: Vec<&String> = values
        .iter()
        .chain([&pass, &new_pass, &wrong_pass, &too_big])
        .collect();
    let mut status_json = None;
    for (args, stdin, expected, shows_value) in &steps {
        let (code, stdout, stderr) = avp(&agent, args, stdin);
        assert_eq!(code, *expected, "avp {args:?}: {stderr}");
        for secret in &secrets {
            assert!(
                !stderr.contains(secret.as_str()),
                "avp {args:?} stderr shows {secret}"
            );
            if !shows_value {
                assert!(
                    !stdout.contains(secret.as_str()),
                    "avp {args:?} stdout shows {secret}"
                );
            }
        }
        if args == &["--json", "status"] {
            status_json = Some(stdout);
        }
    }
    // The export file holds values by design; it is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(export).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the export file is private");

    // STATUS as the CLI shows it: the hardening the kernel applied.
    let status: serde_json::Value = serde_json::from_str(&status_json.unwrap()).unwrap();
    let hardening = &status["hardening"];
    assert_eq!(hardening["dumpable"], false, "{status}");
    assert_eq!(hardening["core_limit"], 0, "{status}");
    assert!(
        hardening["locked_memory_bytes"].as_u64().unwrap() > 0,
        "{status}"
    );

    // After `avp lock`: not in the agent's memory, argv or environment.
    let pid = agent.pid();
    for secret in &secrets {
        assert_absent(pid, secret, "after `avp lock`");
    }
    for file in ["cmdline", "environ"] {
        let bytes = String::from_utf8_lossy(&proc_file(pid, file)).into_owned();
        for secret in &secrets {
            assert!(
                !bytes.contains(secret.as_str()),
                "{secret} in /proc/<agent>/{file}"
            );
        }
    }
    // Not in any vault file, log line or audit line (the audit writer flushes on exit).
    let mut agent = agent;
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.wait_exit(std::time::Duration::from_secs(10)), Some(0));
    let logs = agent.logs();
    let audit = std::fs::read_to_string(&agent.audit_log).unwrap();
    assert!(
        audit.contains("\"ROTATE\""),
        "the CLI's requests are audited"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} in the agent's log"
        );
        assert!(
            !audit.contains(secret.as_str()),
            "{secret} in the audit log"
        );
        for entry in std::fs::read_dir(&agent.vault).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                path.display()
            );
        }
    }
}
