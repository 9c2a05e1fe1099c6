//! The `avp` CLI, unchanged, on Redis-backed agents: `avp init` through one agent, `avp
//! unlock` through another (two "machines" sharing one Redis), then set / get / ls / rm
//! across them, and the errors a user sees when Redis is down.

use super::agent_on;
use avp_tests::cli::{
    assert_a_wide_workspace_lists_and_runs, assert_unlock_checks_the_passphrase_when_unlocked, avp,
    code, get, init, passphrase_line, run, set, text,
};
use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::{AgentOptions, TestAgent};

#[test]
fn init_set_get_ls_rm_across_two_agents() {
    let mut server = RedisServer::start_tcp();
    let machine_a = agent_on(&server);
    let machine_b = agent_on(&server);
    avp(&machine_a)
        .args(["init", "--passphrase-stdin", "--work-factor", "10"])
        .write_stdin(passphrase_line())
        .assert()
        .success()
        .stdout("vault created and unlocked\n");
    let status = text(&run(&machine_b, &["status"], b"").stdout);
    let expected = format!("vault:    locked (redis, {})", server.url());
    assert!(status.starts_with(&expected), "{status}");
    avp(&machine_b)
        .args(["unlock", "--passphrase-stdin"])
        .write_stdin(passphrase_line())
        .assert()
        .success()
        .stdout("vault unlocked\n");

    set(&machine_a, "DATABASE_URL", b"postgres://db/prod");
    avp(&machine_b)
        .args(["set", "API_KEY", "-", "--label", "env=prod"])
        .write_stdin(b"\x00binary\xff".to_vec())
        .assert()
        .success();
    assert_eq!(get(&machine_b, "DATABASE_URL"), b"postgres://db/prod");
    assert_eq!(get(&machine_a, "API_KEY"), b"\x00binary\xff");

    let listed = run(&machine_a, &["ls"], b"");
    assert_eq!(code(&listed), 0, "{}", text(&listed.stderr));
    let names: Vec<String> = text(&listed.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(names, ["API_KEY", "DATABASE_URL"]);
    let prod = text(&run(&machine_b, &["ls", "--label", "env=prod"], b"").stdout);
    assert!(
        prod.contains("API_KEY") && !prod.contains("DATABASE_URL"),
        "{prod}"
    );

    avp(&machine_b)
        .args(["rm", "API_KEY"])
        .assert()
        .success()
        .stdout("deleted API_KEY from workspace default\n");
    let gone = run(&machine_a, &["get", "API_KEY"], b"");
    assert_eq!(code(&gone), 1);
    assert!(
        text(&gone.stderr).contains("SECRET_NOT_FOUND"),
        "{}",
        text(&gone.stderr)
    );

    // Redis down: what machine A wrote or read is still served from its last-known copy;
    // for anything else the CLI reports the agent's refusal with the AVP code and reason.
    server.kill();
    assert_eq!(get(&machine_a, "DATABASE_URL"), b"postgres://db/prod");
    let down = run(&machine_a, &["get", "NEVER_SET"], b"");
    assert_eq!(code(&down), 1);
    let stderr = text(&down.stderr);
    assert!(stderr.contains("BACKEND_UNAVAILABLE"), "{stderr}");
    assert!(stderr.contains("is it running?"), "{stderr}");
    server.restart();
    assert_eq!(get(&machine_a, "DATABASE_URL"), b"postgres://db/prod");
}

#[test]
fn unlock_of_an_unlocked_vault_checks_the_passphrase() {
    let server = RedisServer::start();
    let agent = agent_on(&server);
    init(&agent);
    assert_unlock_checks_the_passphrase_when_unlocked(&agent);
}

#[test]
fn a_workspace_whose_metadata_exceeds_a_frame_lists_and_runs() {
    let server = RedisServer::start();
    let agent = agent_on(&server);
    init(&agent);
    assert_a_wide_workspace_lists_and_runs(&agent);
}

/// `avp status` with Redis down shows the backend's health and exits 1 with
/// `BACKEND_UNAVAILABLE`; before, it said "unlocked, 0 secrets" and exited 0. With the
/// last-known copies on (the default) the backend is `degraded` since the first failed
/// contact, and a secret read or written before still reads; with them off
/// (`--redis-stale-reads 0`) it is `unavailable` and nothing reads.
#[test]
fn status_with_redis_down_says_so_and_fails() {
    for stale_reads in [true, false] {
        let mut server = RedisServer::start_tcp();
        let mut args = agent_args(&server.url());
        if !stale_reads {
            args.extend(["--redis-stale-reads".into(), "0".into()]);
        }
        let agent = TestAgent::start_with(AgentOptions {
            args,
            ..AgentOptions::default()
        });
        init(&agent);
        set(&agent, "A", b"1");
        let up = run(&agent, &["status"], b"");
        assert_eq!(code(&up), 0, "{}", text(&up.stderr));
        assert!(
            text(&up.stdout).contains("\nbackend:  available\n"),
            "{}",
            text(&up.stdout)
        );

        server.kill();
        // The agent learns that Redis is gone from the first operation that needs it.
        let read = run(&agent, &["get", "A"], b"");
        let (health, what) = if stale_reads {
            assert_eq!(code(&read), 0, "{}", text(&read.stderr));
            assert_eq!(read.stdout, b"1");
            ("degraded", "only secrets read before can be read")
        } else {
            assert_eq!(code(&read), 1, "{}", text(&read.stderr));
            ("unavailable", "secrets can be neither read nor written")
        };
        let down = run(&agent, &["status"], b"");
        let (stdout, stderr) = (text(&down.stdout), text(&down.stderr));
        assert_eq!(code(&down), 1, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("\nbackend:  {health}")),
            "{stdout}"
        );
        assert_eq!(stdout.contains(" since "), stale_reads, "{stdout}");
        assert!(
            stderr.starts_with(&format!(
                "avp: the redis backend at {} cannot be reached, so {what}",
                server.url()
            )),
            "{stderr}"
        );
        assert!(stderr.contains("(BACKEND_UNAVAILABLE)"), "{stderr}");
        let json = run(&agent, &["--json", "status"], b"");
        assert_eq!(code(&json), 1);
        let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(doc["backend_status"], health);
        assert_eq!(doc["degraded_since"].is_string(), stale_reads, "{doc}");
        let err: serde_json::Value = serde_json::from_slice(&json.stderr).unwrap();
        assert_eq!(err["error"]["code"], "BACKEND_UNAVAILABLE");

        server.restart();
        assert_eq!(get(&agent, "A"), b"1");
        assert_eq!(code(&run(&agent, &["status"], b"")), 0);
    }
}

#[test]
fn doctor_checks_that_redis_answers() {
    let mut server = RedisServer::start_tcp();
    let agent = agent_on(&server);
    agent.init();
    let redis_check = |agent: &TestAgent| {
        let out = run(agent, &["--json", "doctor"], b"");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
        let check = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "redis")
            .cloned()
            .unwrap_or_else(|| panic!("no redis check: {doc}"));
        (code(&out), check)
    };
    let (_, check) = redis_check(&agent);
    assert_eq!(check["status"], "ok", "{check}");
    server.kill();
    let (exit, check) = redis_check(&agent);
    assert_eq!(exit, 1, "{check}");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["fix"].as_str().unwrap().contains("redis-url"),
        "{check}"
    );
}
