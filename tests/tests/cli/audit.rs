//! `avp audit`: the agent's audit log as a table, filtered, as JSON lines, and followed.

use avp_tests::TestAgent;
use avp_tests::cli::{avp, code, run, set, set_in, text};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `avp ARGS` until its stdout satisfies `done` (the agent writes its log within
/// 50 ms of a decision, so the lines asked for may take a moment to appear).
fn eventually(agent: &TestAgent, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(agent, args, b"");
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        if done(&stdout) {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "avp {args:?} never printed it: {stdout}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn agent_with_history() -> TestAgent {
    let agent = TestAgent::start_initialized();
    set(&agent, "API_KEY", b"MARKER-value");
    set_in(&agent, "prod", "DB", b"MARKER-db");
    avp(&agent).args(["get", "API_KEY"]).assert().success();
    avp(&agent).args(["get", "NOPE"]).assert().code(1);
    agent
}

#[test]
fn audit_shows_the_log_as_a_table_and_filters_it() {
    let agent = agent_with_history();
    let table = eventually(&agent, &["audit"], |s| s.contains("SECRET_NOT_FOUND"));
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("TIME")
            && header.split_whitespace().collect::<Vec<_>>()
                == [
                    "TIME",
                    "OPERATION",
                    "OUTCOME",
                    "WORKSPACE",
                    "NAME",
                    "CLIENT"
                ],
        "{table}"
    );
    assert!(!table.contains("MARKER"), "no value in the log");
    let retrieve = table
        .lines()
        .find(|l| l.contains("RETRIEVE") && l.contains("API_KEY"))
        .expect("the get of API_KEY");
    let cells: Vec<&str> = retrieve.split_whitespace().collect();
    assert_eq!(
        &cells[2..6],
        // `avp get` reads in one write (PROTOCOL.md §6.17), audited under that name.
        ["RETRIEVE_IN_CONNECTION_SESSION", "OK", "default", "API_KEY"],
        "{retrieve}"
    );
    assert!(
        cells[6].ends_with("/avp"),
        "the client's executable: {retrieve}"
    );

    let names = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(5).unwrap().to_owned())
            .collect()
    };
    let only_key = text(&run(&agent, &["audit", "--name", "API_KEY"], b"").stdout);
    assert!(
        names(&only_key).iter().all(|n| n == "API_KEY"),
        "{only_key}"
    );
    let failed = text(&run(&agent, &["audit", "--outcome", "secret_not_found"], b"").stdout);
    assert_eq!(failed.lines().count(), 2, "{failed}");
    assert!(
        failed.contains("RETRIEVE") && failed.contains("NOPE"),
        "{failed}"
    );
    let prod = text(&run(&agent, &["-w", "prod", "audit"], b"").stdout);
    assert!(prod.lines().skip(1).all(|l| l.contains(" prod ")), "{prod}");
    assert!(prod.contains("STORE"), "{prod}");
    let recent = text(&run(&agent, &["audit", "--since", "1h"], b"").stdout);
    assert_eq!(recent, table, "everything happened within the hour");
    let none = run(&agent, &["audit", "--name", "NEVER_USED"], b"");
    assert_eq!(code(&none), 0);
    assert!(none.stdout.is_empty());
    assert_eq!(text(&none.stderr), "no audit lines match\n");
}

#[test]
fn audit_json_passes_the_lines_through() {
    let agent = agent_with_history();
    let lines = eventually(&agent, &["--json", "audit", "--name", "NOPE"], |s| {
        !s.is_empty()
    });
    let log = std::fs::read_to_string(&agent.audit_log).unwrap();
    for line in lines.lines() {
        assert!(
            log.lines().any(|l| l == line),
            "not a line of the log: {line}"
        );
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["name"], "NOPE");
    }
    let all = text(&run(&agent, &["--json", "audit"], b"").stdout);
    assert_eq!(all, log, "no filter: the whole log, as written");
}

#[test]
fn audit_reads_a_given_file_and_says_when_there_is_none() {
    let agent = agent_with_history();
    let copy = agent.dir.path().join("copy.jsonl");
    eventually(&agent, &["audit"], |s| s.contains("SECRET_NOT_FOUND"));
    std::fs::copy(&agent.audit_log, &copy).unwrap();
    let from_file = run(&agent, &["audit", "--file", copy.to_str().unwrap()], b"");
    assert_eq!(code(&from_file), 0);
    assert!(text(&from_file.stdout).contains("NOPE"));
    let missing = run(
        &agent,
        &["audit", "--file", "/nonexistent/audit.jsonl"],
        b"",
    );
    assert_eq!(code(&missing), 1);
    assert!(
        text(&missing.stderr)
            .starts_with("avp: cannot open the audit log /nonexistent/audit.jsonl"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn audit_follow_prints_new_lines_as_they_are_written() {
    let agent = agent_with_history();
    // Under timeout(1), so a follow that never prints ends (and fails the test) instead
    // of hanging it; timeout passes our SIGTERM on to avp.
    let mut follow = Command::new("timeout")
        .arg("60")
        .arg(avp_tests::avp_bin())
        .args(["--json", "audit", "--follow", "--name", "LATER"])
        .env_clear()
        .env("AVP_SOCK", &agent.socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run avp audit --follow");
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    // Written after `audit --follow` started; it has to notice.
    set(&agent, "LATER", b"v");
    let line = lines.next().expect("a line").expect("readable");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["name"], "LATER");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follow.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    follow.wait().unwrap();
}

#[test]
fn status_names_the_audit_log_that_audit_reads() {
    let agent = TestAgent::start_initialized();
    let out = run(&agent, &["--json", "status"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["audit_log"], agent.audit_log.display().to_string());
}
