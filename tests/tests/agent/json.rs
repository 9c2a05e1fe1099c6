//! The JSON-lines wire (PROTOCOL.md §12) through the real agent and socket: every operation,
//! the spec's examples replayed byte for byte, a `socat` one-liner, and hostile lines —
//! each answered with its code, closing at most its own connection, costing the agent
//! nothing.

use avp_protocol::{ErrorCode, ExpiryChange, Passphrase, Request, Response, Timestamp};
use avp_tests::json::read_line;
use avp_tests::wire::{code_of, labels};
use avp_tests::{AgentOptions, Conn, TEST_PASSPHRASE, TestAgent};
use std::io::{Read, Write};
use std::time::Duration;

/// An initialized agent with one secret, and the JSON connection that stored it.
fn agent_with_a_secret() -> (TestAgent, avp_protocol::SessionId) {
    let agent = TestAgent::start_initialized();
    let mut conn = agent.connect_json();
    let session = conn.session("default");
    assert!(matches!(
        conn.store(&session, "KEEP", b"kept"),
        Response::Stored(_)
    ));
    (agent, session)
}

/// The agent still serves a fresh client on each wire and still holds the secret.
fn still_serving(agent: &TestAgent, session: &avp_protocol::SessionId) {
    assert_eq!(
        agent.connect_json().value(session, "KEEP"),
        Ok(b"kept".to_vec())
    );
    assert_eq!(agent.connect().value(session, "KEEP"), Ok(b"kept".to_vec()));
}

/// Writes `bytes` as they are and reads one answer line back as JSON (`None` if the agent
/// closed without one).
fn send(conn: &mut Conn, bytes: &[u8]) -> Option<serde_json::Value> {
    conn.stream.write_all(bytes).ok()?;
    let line = read_line(&mut conn.stream)?;
    Some(serde_json::from_slice(&line).expect("every answer is one JSON object"))
}

fn code(answer: &Option<serde_json::Value>) -> Option<&str> {
    answer.as_ref()?["error"]["code"].as_str()
}

#[test]
fn every_operation_works_over_json() {
    let agent = TestAgent::start();
    let mut conn = agent.connect_json();
    let Response::Discover(info) = conn.call(&Request::Discover) else {
        panic!("discover")
    };
    assert_eq!(info.backend.status.as_str(), "locked");
    let init = conn.call(&Request::Init {
        passphrase: Passphrase::new(TEST_PASSPHRASE),
        work_factor: Some(10),
    });
    assert!(matches!(init, Response::Initialized), "{init:?}");
    let s = conn.session("team/job");
    // A value that is not UTF-8 and needs every base64 character, with labels and expiry.
    let value: Vec<u8> = (0..=255u8).rev().collect();
    let expiry = Timestamp::now().plus_seconds(3_600);
    let stored = conn.store_full(
        &s,
        "db.password",
        &value,
        Some(labels(&[("env", "prod"), ("quote", "\"\\\n")])),
        ExpiryChange::Set(expiry),
    );
    let Response::Stored(first) = stored else {
        panic!("{stored:?}")
    };
    assert!(first.created && first.version == 1);
    let Response::Retrieved(secret) = conn.retrieve(&s, "db.password", None) else {
        panic!("retrieve")
    };
    assert_eq!(secret.value.expose_secret(), value.as_slice());
    assert_eq!(secret.labels.as_map()["quote"], "\"\\\n");
    assert_eq!(secret.expires_at, Some(expiry));
    // An empty value, expiry cleared, labels kept.
    let cleared = conn.store_full(&s, "db.password", b"", None, ExpiryChange::Clear);
    assert!(matches!(cleared, Response::Stored(r) if r.version == 2 && !r.created));
    let Response::Retrieved(secret) = conn.retrieve(&s, "db.password", None) else {
        panic!("retrieve")
    };
    assert!(secret.value.is_empty() && secret.expires_at.is_none());
    assert_eq!(secret.labels.as_map()["env"], "prod");
    assert_eq!(conn.value(&s, "db.password").unwrap(), b"");
    let Response::Retrieved(old) = conn.retrieve(&s, "db.password", Some(1)) else {
        panic!("retrieve v1")
    };
    assert_eq!(old.value.expose_secret(), value.as_slice());
    // A value at the limit fits a line; one byte more is VALUE_TOO_LARGE.
    let big = vec![0xa5u8; 65_536];
    assert!(matches!(conn.store(&s, "big", &big), Response::Stored(_)));
    assert_eq!(conn.value(&s, "big").unwrap(), big);
    let over = conn.store(&s, "big", &[0; 65_537]);
    assert_eq!(code_of(&over), Some(ErrorCode::ValueTooLarge));
    // Pages, with the cursor passed back.
    for i in 0..5 {
        assert!(matches!(
            conn.store(&s, &format!("k{i}"), b"v"),
            Response::Stored(_)
        ));
    }
    assert_eq!(
        conn.names(&s),
        ["big", "db.password", "k0", "k1", "k2", "k3", "k4"]
    );
    let filtered = conn.list(&s, labels(&[("env", "prod")]), None, Some(2));
    assert!(matches!(filtered, Response::Listed(p) if p.secrets.len() == 1));
    let rotated = conn.rotate(&s, "k0", b"r");
    assert!(
        matches!(rotated, Response::Rotated(r) if r.previous_version == 1 && r.new_version == 2)
    );
    let Response::History(history) = conn.history(&s, "k0") else {
        panic!("history")
    };
    assert_eq!(history.versions.len(), 2);
    assert!(matches!(conn.delete(&s, "k0"), Response::Deleted(d) if d.deleted));
    assert!(matches!(conn.delete(&s, "k0"), Response::Deleted(d) if !d.deleted));
    assert_eq!(
        code_of(&conn.retrieve(&s, "k0", None)),
        Some(ErrorCode::SecretNotFound)
    );
    // The bincode wire sees what the JSON wire wrote, in the same session.
    assert_eq!(agent.connect().value(&s, "k1").unwrap(), b"v");
    let status = conn.status();
    assert_eq!((status.state.as_str(), status.secrets), ("unlocked", 6));
    assert!(matches!(conn.terminate(&s), Response::Terminated));
    assert_eq!(
        code_of(&conn.retrieve(&s, "k1", None)),
        Some(ErrorCode::SessionTerminated)
    );
    let changed = conn.call(&Request::ChangePassphrase {
        old: Passphrase::new(TEST_PASSPHRASE),
        new: Passphrase::new("new \"passphrase\" \u{e9}"),
    });
    assert!(
        matches!(changed, Response::PassphraseChanged),
        "{changed:?}"
    );
    assert!(matches!(conn.lock(), Response::Locked));
    let wrong = conn.call(&Request::Unlock {
        passphrase: Passphrase::new(TEST_PASSPHRASE),
    });
    assert_eq!(code_of(&wrong), Some(ErrorCode::AuthenticationFailed));
    let unlocked = conn.call(&Request::Unlock {
        passphrase: Passphrase::new("new \"passphrase\" \u{e9}"),
    });
    assert!(matches!(unlocked, Response::Unlocked), "{unlocked:?}");
    // Every request was audited like a bincode one.
    let audit = std::fs::read_to_string(&agent.audit_log).unwrap();
    for op in [
        "\"STORE\"",
        "\"RETRIEVE\"",
        "\"LIST\"",
        "\"ROTATE\"",
        "\"CHANGE_PASSPHRASE\"",
    ] {
        assert!(audit.contains(op), "{op} not audited:\n{audit}");
    }
}

#[test]
fn hello_is_optional_checked_when_first_and_refused_later() {
    let agent = TestAgent::start();
    let mut conn = agent.connect_json();
    let version = avp_protocol::PROTOCOL_VERSION;
    let hello = format!("{{\"op\":\"HELLO\",\"version\":{version}}}\n");
    let answer = send(&mut conn, hello.as_bytes()).unwrap();
    assert_eq!(answer, serde_json::json!({"ok": true, "version": version}));
    let again = send(&mut conn, hello.as_bytes());
    assert_eq!(code(&again), Some("PROTOCOL_ERROR"));
    assert!(send(&mut conn, b"{\"op\":\"STATUS\"}\n").unwrap()["ok"] == true);

    let mut other = agent.connect_json();
    let mismatch = send(&mut other, b"{\"op\":\"HELLO\",\"version\":99}\n");
    assert_eq!(code(&mismatch), Some("VERSION_MISMATCH"));
    let message = mismatch.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("99") && message.contains(&version.to_string()),
        "{message}"
    );
    assert!(other.is_closed());
}

/// Runs `socat - UNIX-CONNECT:SOCKET` with `input` on its stdin; its answer lines, parsed.
fn socat(agent: &TestAgent, input: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("socat")
        .arg("-")
        .arg(format!("UNIX-CONNECT:{}", agent.socket.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes())?;
            drop(stdin);
            child.wait_with_output()
        })
        .expect("socat runs (apt install socat; .ci/run installs it)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn socat_one_liners_get_answers_and_secrets() {
    let agent = TestAgent::start_initialized();
    // Two lines written at once: both are answered, in order.
    let lines = socat(&agent, "{\"op\":\"DISCOVER\"}\n{\"op\":\"STATUS\"}\n");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["conformance"], "full");
    assert_eq!(lines[1]["state"], "unlocked");
    // A secret stored by one client, read by the shell: a session from one socat call
    // serves the next (sessions belong to the uid, not to a connection).
    let mut conn = agent.connect();
    let s = conn.session("default");
    assert!(matches!(
        conn.store(&s, "API_KEY", b"sk-123"),
        Response::Stored(_)
    ));
    let auth = socat(
        &agent,
        "{\"op\":\"AUTHENTICATE\",\"workspace\":\"default\"}\n",
    );
    let session = auth[0]["session_id"].as_str().unwrap();
    let get =
        format!("{{\"op\":\"RETRIEVE\",\"session_id\":\"{session}\",\"name\":\"API_KEY\"}}\n");
    let answer = socat(&agent, &get);
    assert_eq!(
        answer[0]["value"], "c2stMTIz",
        "base64 of sk-123: {answer:?}"
    );
}

#[test]
fn an_oversized_line_is_refused_before_it_is_read() {
    let (agent, session) = agent_with_a_secret();
    let mut conn = agent.connect_json();
    // 1 MiB + 1 without a newline, then more: the agent answers once the limit is passed.
    let mut line = b"{\"op\":\"STATUS\",\"x\":\"".to_vec();
    line.resize((1 << 20) + 1, b'a');
    let answer = send(&mut conn, &line);
    assert_eq!(code(&answer), Some("PROTOCOL_ERROR"));
    assert!(conn.is_closed());
    // A line of exactly 1 MiB, its newline included, is read (and refused for its field).
    let mut conn = agent.connect_json();
    let mut line = b"{\"op\":\"STATUS\",\"x\":\"".to_vec();
    line.resize((1 << 20) - 3, b'a');
    line.extend_from_slice(b"\"}\n");
    assert_eq!(line.len(), 1 << 20);
    let answer = send(&mut conn, &line);
    assert_eq!(code(&answer), Some("INVALID_REQUEST"));
    still_serving(&agent, &session);
}

#[test]
fn unreadable_lines_close_and_bad_fields_keep_the_connection() {
    let (agent, session) = agent_with_a_secret();
    let s = session.expose();
    let closing: Vec<Vec<u8>> = vec![
        b"{not json}\n".to_vec(),
        b"{\"op\":\"NOPE\"}\n".to_vec(),
        b"{\"op\":42}\n".to_vec(),
        b"{}\n".to_vec(),
        b"{\"op\":\"STATUS\"} trailing\n".to_vec(),
        b"{\xff\xfe\x00\x01binary garbage\x00\n".to_vec(),
        b"{\"op\":\"STATUS\",\"x\":\"\xc3\x28\"}\n".to_vec(),
        format!(
            "{{\"op\":\"LIST\",\"session_id\":\"{s}\",\"label_filter\":{}}}\n",
            "[".repeat(100_000)
        )
        .into_bytes(),
    ];
    for bytes in &closing {
        let mut conn = agent.connect_json();
        let answer = send(&mut conn, bytes);
        assert_eq!(
            code(&answer),
            Some("PROTOCOL_ERROR"),
            "{:?}",
            String::from_utf8_lossy(&bytes[..40.min(bytes.len())])
        );
        assert!(conn.is_closed());
    }
    let mut conn = agent.connect_json();
    let kept = [
        (
            format!(r#"{{"op":"RETRIEVE","session_id":"{s}","name":"KEEP","colour":"blue"}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"RETRIEVE","session_id":"{s}","name":"KEEP","name":"KEEP"}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"RETRIEVE","session_id":"{s}","name":7}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"RETRIEVE","session_id":"{s}","name":"KEEP","version":"1"}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"RETRIEVE","session_id":"{s}"}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"RETRIEVE","session_id":"{s}","name":"1st"}}"#),
            "INVALID_NAME",
        ),
        (
            r#"{"op":"RETRIEVE","session_id":"avp_sess_x","name":"KEEP"}"#.to_owned(),
            "SESSION_NOT_FOUND",
        ),
        (
            format!(r#"{{"op":"STORE","session_id":"{s}","name":"K","value":"not base64!"}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(
                r#"{{"op":"STORE","session_id":"{s}","name":"K","value":"a2VwdA==","expires_at":"soon"}}"#
            ),
            "INVALID_REQUEST",
        ),
        (
            format!(
                r#"{{"op":"STORE","session_id":"{s}","name":"K","value":"","expires_at":"2000-01-01T00:00:00Z"}}"#
            ),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"LIST","session_id":"{s}","limit":0}}"#),
            "INVALID_REQUEST",
        ),
        (
            format!(r#"{{"op":"LIST","session_id":"{s}","cursor":"garbage"}}"#),
            "INVALID_REQUEST",
        ),
        (
            r#"{"op":"AUTHENTICATE","workspace":"a//b"}"#.to_owned(),
            "INVALID_WORKSPACE",
        ),
        (
            r#"{"op":"INIT","passphrase":"x","work_factor":10}"#.to_owned(),
            "INVALID_REQUEST",
        ),
    ];
    for (line, expected) in &kept {
        let answer = send(&mut conn, format!("{line}\n").as_bytes());
        assert_eq!(code(&answer), Some(*expected), "{line}");
    }
    assert_eq!(
        conn.value(&session, "KEEP"),
        Ok(b"kept".to_vec()),
        "the connection went on"
    );
    still_serving(&agent, &session);
}

#[test]
fn a_slow_loris_line_is_cut_off_by_the_frame_timeout() {
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--frame-timeout".into(), "1s".into()],
        ..Default::default()
    });
    let mut conn = agent.connect_json();
    conn.stream.write_all(b"{\"op\":").unwrap();
    // A byte every 200 ms keeps the socket busy, but the whole line is due 1 s after its
    // first byte: the agent must close long before the trickle ends (20 s).
    let mut writer = conn.stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            if writer.write_all(b" ").is_err() {
                return true;
            }
        }
        false
    });
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = conn.stream.read(&mut byte);
    assert!(matches!(read, Ok(0)), "closed without an answer: {read:?}");
    assert!(
        trickle.join().unwrap(),
        "the trickle saw the connection closed"
    );
    assert!(matches!(
        agent.connect_json().call(&Request::Discover),
        Response::Discover(_)
    ));
}

#[test]
fn at_a_full_table_of_half_sent_lines_a_newcomer_evicts_one_of_them() {
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--max-connections".into(), "4".into()],
        ..Default::default()
    });
    // Four JSON connections, each in the middle of a line: none is idle.
    let mut half_sent = Vec::new();
    for _ in 0..4 {
        let mut conn = agent.connect_json();
        conn.stream.write_all(b"{\"op\":\"STA").unwrap();
        conn.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        half_sent.push(conn);
    }
    // The newcomer is served, not refused until the frame timeout (10 s).
    let mut conn = agent.connect_json();
    assert!(matches!(
        conn.call(&Request::Discover),
        Response::Discover(_)
    ));
    // Exactly one half line made room; the others are still waited for.
    let mut closed = 0;
    for other in &mut half_sent {
        let mut byte = [0u8; 1];
        match other.stream.read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a half-sent line got {other:?}"),
        }
    }
    assert_eq!(closed, 1, "one connection evicted");
}

/// The §12.9 examples of PROTOCOL.md, one list of lines per block.
fn examples() -> Vec<Vec<String>> {
    let spec = include_str!("../../../protocol/PROTOCOL.md");
    let section = spec
        .split_once("### §12.9 Examples")
        .expect("PROTOCOL.md has §12.9")
        .1;
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some((_, after)) = rest.split_once("```jsonl\n") {
        let (block, tail) = after.split_once("```").expect("a closed block");
        blocks.push(block.lines().map(str::to_owned).collect());
        rest = tail;
    }
    blocks
}

/// The session id the examples show.
const DOC_SESSION: &str =
    "avp_sess_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Values the agent picks at run time (§12.9): the example's value is put in the answer's
/// place before comparing.
const VOLATILE: &[&str] = &[
    "created_at",
    "updated_at",
    "agent_version",
    "vault_location",
    "pid",
    "idle_lock_in_seconds",
    "max_unlock_in_seconds",
    "dumpable",
    "core_limit",
    "locked_memory_bytes",
    "memlock_limit",
    "audit_log",
    "last_locked_at",
];

/// The byte ranges of the values of every `"key":` in `line`, in order.
fn value_spans(line: &str, key: &str) -> Vec<(usize, usize)> {
    let pattern = format!("\"{key}\":");
    let bytes = line.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(at) = line[from..].find(&pattern) {
        let start = from + at + pattern.len();
        let mut end = start;
        if bytes[start] == b'"' {
            end += 1;
            while bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            end += 1;
        } else {
            while !matches!(bytes[end], b',' | b'}') {
                end += 1;
            }
        }
        spans.push((start, end));
        from = end;
    }
    spans
}

/// `actual` with the values of `keys` replaced by those in `expected` (same occurrence).
fn substitute(actual: &str, expected: &str, keys: &[&str]) -> String {
    let mut out = actual.to_owned();
    for key in keys {
        let theirs = value_spans(expected, key);
        let ours = value_spans(&out, key);
        if theirs.len() != ours.len() {
            continue; // the comparison will show the difference
        }
        for (&(s, e), &(es, ee)) in ours.iter().zip(&theirs).rev() {
            out.replace_range(s..e, &expected[es..ee]);
        }
    }
    out
}

#[test]
fn the_spec_examples_replay_byte_for_byte() {
    let agent = TestAgent::start();
    let blocks = examples();
    assert!(blocks.len() >= 6, "the examples were found");
    let mut session = None::<String>;
    let mut ops = std::collections::BTreeSet::new();
    for block in blocks {
        let mut conn = agent.connect_json();
        let mut last_request = String::new();
        for line in block {
            if let Some(request) = line.strip_prefix("> ") {
                let request = match &session {
                    Some(real) => request.replace(DOC_SESSION, real),
                    None => request.to_owned(),
                };
                let op: serde_json::Value = serde_json::from_str(&request).unwrap();
                ops.insert(op["op"].as_str().unwrap().to_owned());
                conn.stream
                    .write_all(format!("{request}\n").as_bytes())
                    .unwrap();
                last_request = request;
            } else if let Some(expected) = line.strip_prefix("< ") {
                let got = read_line(&mut conn.stream).expect("an answer line");
                let got = String::from_utf8(got).unwrap();
                let got = got.strip_suffix('\n').expect("a newline ends the answer");
                let answer: serde_json::Value = serde_json::from_str(got).unwrap();
                if let Some(id) = answer["session_id"].as_str() {
                    session = Some(id.to_owned());
                }
                let mut got = match &session {
                    Some(real) => got.replace(real.as_str(), DOC_SESSION),
                    None => got.to_owned(),
                };
                got = substitute(&got, expected, VOLATILE);
                if last_request.contains("\"op\":\"AUTHENTICATE\"") {
                    got = substitute(&got, expected, &["expires_at"]);
                }
                assert_eq!(got, expected, "answer to {last_request}");
            }
        }
    }
    for op in avp_protocol::json::request::OPS {
        assert!(ops.contains(op), "PROTOCOL.md §12.9 has no example of {op}");
    }
}
