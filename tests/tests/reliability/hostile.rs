//! Hostile input at a live agent's socket (the CI counterpart of the `cargo fuzz` target in
//! fuzz/): random bytes, and valid request frames mutated — bytes flipped, cut, inserted,
//! spliced, length prefixes rewritten — each on its own connection, before or after `Hello`.
//!
//! After every case a well-behaved client must still be served (the agent never panics or
//! stops), everything the agent sent back must be whole frames a client can decode, and the
//! agent's memory must stay within its limits: frames are allocated only after their length
//! passed the 1 MiB limit and the 64 MiB agent-wide frame budget granted them room.
//!
//! `AVP_HOSTILE_CASES` (default 2000) sets the number of cases.

use avp_protocol::types::Cursor;
use avp_protocol::{
    ErrorCode, Labels, PROTOCOL_VERSION, Request, Response, SecretName, SecretValue, SessionId,
    WorkspaceId, frame,
};
use avp_tests::rng::env_number;
use avp_tests::sys::{rss, status_bytes};
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, Conn, TestAgent};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The agent-wide budget for frames being read (state.rs `frame_budget_bytes`).
const FRAME_BUDGET: u64 = 64 * MIB;

/// Well-formed requests to mutate: every operation a client may send on a connection,
/// except the ones that would change the passphrase or lock everyone out for the rest of
/// the run (a mutation can still produce those; the checker copes).
fn base_frames(session: &SessionId) -> Vec<Vec<u8>> {
    let name = SecretName::new("TARGET").unwrap();
    let requests = vec![
        Request::Hello {
            version: PROTOCOL_VERSION,
        },
        Request::Discover,
        Request::Status,
        Request::Authenticate {
            workspace: WorkspaceId::new("team/job").unwrap(),
            agent_id: "fuzz".into(),
            ttl_seconds: Some(60),
            wait_for_unlock: false,
        },
        Request::Store {
            session: session.clone(),
            name: name.clone(),
            value: SecretValue::from_slice(b"\x00value\xff"),
            labels: Some(Labels::empty()),
            expires_at: avp_protocol::ExpiryChange::Keep,
        },
        Request::Retrieve {
            session: session.clone(),
            name: name.clone(),
            version: Some(1),
        },
        Request::List {
            session: session.clone(),
            label_filter: Labels::empty(),
            cursor: Some(Cursor::after(&name)),
            limit: Some(10),
        },
        Request::Rotate {
            session: session.clone(),
            name: name.clone(),
            value: SecretValue::from_slice(b"r"),
        },
        Request::History {
            session: session.clone(),
            name: name.clone(),
        },
        Request::Delete {
            session: session.clone(),
            name,
        },
    ];
    requests
        .iter()
        .map(|r| frame::encode(r).unwrap().to_vec())
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    /// Rewrite the length prefix (absurd, just over the limit, or off by a little).
    Length(u32),
    /// Append another base frame.
    Splice(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Mutation::Flip(at, bits | 1)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        1 => prop_oneof![
            Just(u32::MAX),
            Just(1 << 20),
            Just((1 << 20) + 1),
            0u32..64,
        ]
        .prop_map(Mutation::Length),
        1 => any::<usize>().prop_map(Mutation::Splice),
    ]
}

/// One connection's bytes.
#[derive(Debug, Clone)]
enum Case {
    Random {
        hello: bool,
        bytes: Vec<u8>,
    },
    Mutated {
        hello: bool,
        base: usize,
        mutations: Vec<Mutation>,
    },
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        1 => (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(hello, bytes)| Case::Random { hello, bytes }),
        3 => (any::<bool>(), any::<usize>(), proptest::collection::vec(mutation(), 1..5))
            .prop_map(|(hello, base, mutations)| Case::Mutated { hello, base, mutations }),
    ]
}

fn build(case: &Case, bases: &[Vec<u8>]) -> (bool, Vec<u8>) {
    match case {
        Case::Random { hello, bytes } => (*hello, bytes.clone()),
        Case::Mutated {
            hello,
            base,
            mutations,
        } => {
            let mut bytes = bases[base % bases.len()].clone();
            for m in mutations {
                match m {
                    Mutation::Flip(at, bits) if !bytes.is_empty() => {
                        let i = at % bytes.len();
                        bytes[i] ^= bits;
                    }
                    Mutation::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
                    Mutation::Insert(at, more) => {
                        let i = at % (bytes.len() + 1);
                        bytes.splice(i..i, more.iter().copied());
                    }
                    Mutation::Length(len) if bytes.len() >= 4 => {
                        bytes[..4].copy_from_slice(&len.to_be_bytes());
                    }
                    Mutation::Splice(other) => {
                        bytes.extend_from_slice(&bases[other % bases.len()]);
                    }
                    _ => {}
                }
            }
            (*hello, bytes)
        }
    }
}

/// Sends one case on a fresh connection and reads until the agent closes it. Every answer
/// must be a whole, decodable frame (or, on a connection whose first byte is `{`, a whole
/// JSON line).
fn send_case(socket: &std::path::Path, hello: bool, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if hello {
        let mut conn = Conn {
            stream: stream.try_clone().unwrap(),
            codec: avp_tests::json::Codec::Bincode,
        };
        conn.hello();
    }
    // The agent may close before taking everything (a bad frame ends the connection).
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answers = Vec::new();
    let started = Instant::now();
    let read = stream.read_to_end(&mut answers);
    prop_assert!(
        read.is_ok() || answers.is_empty() || started.elapsed() < Duration::from_secs(9),
        "the agent neither answered nor closed: {read:?}"
    );
    if !hello && bytes.first() == Some(&b'{') {
        // A first byte `{` chooses the JSON-lines wire (PROTOCOL.md §12): every answer is a
        // whole JSON object on its own line.
        let text = std::str::from_utf8(&answers);
        prop_assert!(text.is_ok(), "an answer that is not UTF-8: {answers:?}");
        let text = text.unwrap();
        prop_assert!(
            text.is_empty() || text.ends_with('\n'),
            "a cut answer: {text:?}"
        );
        for line in text.lines() {
            let parsed = serde_json::from_str::<serde_json::Value>(line);
            prop_assert!(
                parsed.as_ref().is_ok_and(|v| v["ok"].is_boolean()),
                "undecodable JSON answer: {line:?}"
            );
        }
        return Ok(());
    }
    let mut rest = &answers[..];
    while !rest.is_empty() {
        match frame::decode_frame::<Response>(rest) {
            Ok(Some((_, used))) => rest = &rest[used..],
            other => prop_assert!(false, "undecodable answer: {other:?}"),
        }
    }
    Ok(())
}

/// The well-behaved client: DISCOVER always works, and the secret stored at the start is
/// still there (unlocking again or opening a new session if a mutated frame happened to be a
/// valid LOCK or TERMINATE).
struct GoodClient {
    conn: Conn,
    session: SessionId,
}

impl GoodClient {
    fn check(&mut self, agent: &TestAgent) -> Result<(), TestCaseError> {
        prop_assert!(matches!(
            self.conn.call(&Request::Discover),
            Response::Discover(_)
        ));
        for _ in 0..3 {
            match self.conn.value(&self.session, "KEEP") {
                Ok(value) => {
                    prop_assert_eq!(value, b"kept".to_vec());
                    return Ok(());
                }
                Err(ErrorCode::VaultLocked) => {
                    prop_assert!(matches!(agent.unlock(), Response::Unlocked));
                    self.session = self.conn.session("default");
                }
                Err(ErrorCode::SessionTerminated | ErrorCode::SessionNotFound) => {
                    self.session = self.conn.session("default");
                }
                Err(code) => prop_assert!(false, "the good client got {code:?}"),
            }
        }
        prop_assert!(false, "the good client was not served");
        Ok(())
    }
}

#[test]
fn random_and_mutated_frames_never_stop_the_agent() {
    let cases = env_number("AVP_HOSTILE_CASES", 2000) as u32;
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--frame-timeout".into(), "3s".into()],
        env: vec![("AVP_LOG".into(), "info".into())],
        ..Default::default()
    });
    agent.init();
    let pid = agent.pid();
    let good = {
        let mut conn = agent.connect();
        let session = conn.session("default");
        assert!(matches!(
            conn.store(&session, "KEEP", b"kept"),
            Response::Stored(_)
        ));
        GoodClient { conn, session }
    };
    let bases = base_frames(&good.session);
    // The runner takes a `Fn`: the client sits in a `RefCell`.
    let good = std::cell::RefCell::new(good);
    let rss_before = rss(pid);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    runner
        .run(&case(), |case| {
            let (hello, bytes) = build(&case, &bases);
            send_case(&agent.socket, hello, &bytes)?;
            good.borrow_mut().check(&agent)?;
            prop_assert!(
                rss(pid) < rss_before + FRAME_BUDGET + 16 * MIB,
                "the agent's memory grew to {} KiB",
                rss(pid) / 1024
            );
            Ok(())
        })
        .unwrap();
    let peak = status_bytes(pid, "VmHWM").unwrap();
    eprintln!(
        "hostile: {cases} random and mutated connections in {:?}; agent RSS {} KiB before, \
         peak {} KiB, {} KiB after",
        started.elapsed(),
        rss_before / 1024,
        peak / 1024,
        rss(pid) / 1024
    );
}

#[test]
fn frames_claiming_a_gigabyte_between_them_stay_within_the_frame_budget() {
    avp_tests::require_root!("it counts a non-dumpable process's descriptors in /proc/<pid>/fd");
    avp_tests::sys::raise_fd_limit();
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--frame-timeout".into(), "4s".into()],
        env: vec![("AVP_LOG".into(), "info".into())],
        ..Default::default()
    });
    agent.init();
    let pid = agent.pid();
    let rss_before = rss(pid);
    // 200 connections (under the default cap of 256) each announce a maximum-size frame
    // (1 MiB) and send 768 KiB of it: 200 MiB of claims, 150 MiB actually sent.
    let claim = (1u32 << 20).to_be_bytes();
    let chunk = vec![0xa5u8; 768 << 10];
    let mut writers = Vec::new();
    let opening = Instant::now();
    for _ in 0..200 {
        let mut conn = agent.connect();
        conn.stream.write_all(&claim).unwrap();
        let mut stream = conn.stream;
        let chunk = chunk.clone();
        writers.push(std::thread::spawn(move || {
            // Blocks once the agent stops reading (no budget left for this frame).
            stream
                .set_write_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            let _ = stream.write_all(&chunk);
            stream
        }));
    }
    // Each `Hello` above is a small frame: none waited for the big ones before it.
    let opened_in = opening.elapsed();
    assert!(
        opened_in < Duration::from_secs(3),
        "opening the connections took {opened_in:?}: Hello waited behind the big frames"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let during = rss(pid);
    assert!(
        avp_tests::sys::fd_count(pid) > 200,
        "the big frames are still being read (not timed out)"
    );
    // Meanwhile a small request is still answered, promptly: the big frames hold the whole
    // budget, but a small frame must not queue behind them.
    let asked = Instant::now();
    let mut conn = agent.connect();
    let session = conn.session("default");
    assert!(code_of(&conn.store(&session, "k", b"v")).is_none());
    let small_waited = asked.elapsed();
    let streams: Vec<UnixStream> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    drop(streams);
    let peak = status_bytes(pid, "VmHWM").unwrap();
    eprintln!(
        "hostile: 200 half-sent 1 MiB frames: agent RSS {} KiB before, {} KiB during, peak {} \
         KiB; 200 connections opened in {opened_in:?}, a small request meanwhile took \
         {small_waited:?}",
        rss_before / 1024,
        during / 1024,
        peak / 1024
    );
    assert!(
        small_waited < Duration::from_secs(1),
        "a small request waited {small_waited:?} behind the big frames"
    );
    assert!(
        peak < rss_before + FRAME_BUDGET + 16 * MIB,
        "frame memory went past the budget: peak {peak} bytes"
    );
}
