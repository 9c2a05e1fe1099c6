//! Crash safety (README "Security model": "a crash at any instant leaves a vault that
//! unlocks with every acknowledged write").
//!
//! Each trial restarts the agent on the same vault, unlocks it and checks it against a model
//! built only from acknowledged answers, then streams STORE/ROTATE/DELETE from a client
//! thread while the test SIGKILLs the agent after a random delay — usually in the middle of
//! a write, since a durable write is mostly `fdatasync`. The one request in flight at the
//! kill was never acknowledged, so it may or may not have happened; everything else must be
//! there exactly, with its version, and nothing else may be.
//!
//! Compaction trials first bring the journal to just below the fold-into-a-snapshot
//! threshold with large values, then aim the kill at the write that triggers the fold.
//!
//! `AVP_CRASH_TRIALS` (default 200) and `AVP_CRASH_COMPACTION_TRIALS` (default 6) set the
//! counts; `AVP_TEST_SEED` replays a run.

use avp_protocol::Response;
use avp_tests::rng::{Rng, env_number};
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Names the trials write: few, so STORE, ROTATE and DELETE keep meeting the same secrets.
const NAMES: usize = 24;
/// The journal is folded into a snapshot after this many entries.
const COMPACT_AFTER_ENTRIES: usize =
    avp_agent::storage::local::disk::COMPACT_AFTER_ENTRIES as usize;

/// What the acknowledged answers say each secret holds: current version and value.
type Model = BTreeMap<String, (u32, Vec<u8>)>;

#[derive(Debug, Clone)]
enum Op {
    Store(String, Vec<u8>),
    Rotate(String, Vec<u8>),
    Delete(String),
}

impl Op {
    fn name(&self) -> &str {
        match self {
            Op::Store(n, _) | Op::Rotate(n, _) | Op::Delete(n) => n,
        }
    }

    /// The model after this operation, as the agent must have decided it.
    fn apply(&self, model: &mut Model) {
        match self {
            Op::Store(name, value) => {
                let version = model.get(name).map_or(1, |(v, _)| v + 1);
                model.insert(name.clone(), (version, value.clone()));
            }
            Op::Rotate(name, value) => {
                if let Some((version, _)) = model.get(name).cloned() {
                    model.insert(name.clone(), (version + 1, value.clone()));
                }
            }
            Op::Delete(name) => {
                model.remove(name);
            }
        }
    }
}

/// A value that names its secret and a serial, so a torn or misplaced write cannot pass for
/// a real one. Sizes vary from a few bytes to the 64 KiB maximum; `big` (the bulk of a
/// compaction trial) makes a snapshot of a few megabytes, so the fold takes a while.
fn value(rng: &mut Rng, name: &str, serial: u64, big: bool) -> Vec<u8> {
    let len = if big {
        2_048 + rng.below(6_144) as usize
    } else if rng.chance(5) {
        8_192 + rng.below(57_345) as usize
    } else {
        rng.below(200) as usize
    };
    let mut v = format!("{name}#{serial}:").into_bytes();
    v.extend(rng.bytes(len));
    v.truncate(65_536);
    v
}

fn random_op(rng: &mut Rng, model: &Model, serial: u64, big: bool) -> Op {
    let name = format!("S{}", rng.below(NAMES as u64));
    let exists = model.contains_key(&name);
    match rng.below(10) {
        0 if exists => Op::Delete(name),
        1..=3 if exists => {
            let v = value(rng, &name, serial, big);
            Op::Rotate(name, v)
        }
        _ => {
            let v = value(rng, &name, serial, big);
            Op::Store(name, v)
        }
    }
}

/// Sends `op`; `None` if the agent died before answering. Panics if it answered something
/// the model says it could not have.
fn send(conn: &mut Conn, session: &avp_protocol::SessionId, op: &Op, model: &Model) -> Option<()> {
    let request = match op {
        Op::Store(name, v) => avp_protocol::Request::Store {
            session: session.clone(),
            name: avp_tests::wire::name(name),
            value: avp_protocol::SecretValue::from_slice(v),
            labels: None,
            expires_at: avp_protocol::ExpiryChange::Keep,
        },
        Op::Rotate(name, v) => avp_protocol::Request::Rotate {
            session: session.clone(),
            name: avp_tests::wire::name(name),
            value: avp_protocol::SecretValue::from_slice(v),
        },
        Op::Delete(name) => avp_protocol::Request::Delete {
            session: session.clone(),
            name: avp_tests::wire::name(name),
        },
    };
    let answer = conn.try_call(&request)?;
    let expected = model.get(op.name()).map_or(1, |(v, _)| v + 1);
    match (op, &answer) {
        (Op::Store(..), Response::Stored(r)) => assert_eq!(r.version, expected, "{op:?}"),
        (Op::Rotate(..), Response::Rotated(r)) => assert_eq!(r.new_version, expected, "{op:?}"),
        (Op::Delete(..), Response::Deleted(r)) => assert!(r.deleted, "{op:?}"),
        _ => panic!("{op:?}: unexpected {answer:?}"),
    }
    Some(())
}

/// What a writer thread reports when its agent is gone.
struct Run {
    model: Model,
    in_flight: Option<Op>,
    acknowledged: u64,
}

/// Streams writes until the agent dies. `bulk` writes go first, acknowledged before
/// `ready` is signalled (they bring the journal up to the compaction threshold).
fn writer(
    mut conn: Conn,
    session: avp_protocol::SessionId,
    mut model: Model,
    mut rng: Rng,
    bulk: usize,
    big: bool,
    ready: mpsc::Sender<()>,
) -> Run {
    for serial in 0.. {
        if serial == bulk as u64 {
            let _ = ready.send(());
        }
        let op = random_op(&mut rng, &model, serial, big && serial < bulk as u64);
        if send(&mut conn, &session, &op, &model).is_none() {
            return Run {
                model,
                in_flight: Some(op),
                // Every earlier write was acknowledged.
                acknowledged: serial,
            };
        }
        op.apply(&mut model);
    }
    unreachable!()
}

/// What the restarted agent holds must be the model, or the model plus the request that was
/// in flight at the kill.
fn verify(conn: &mut Conn, session: &avp_protocol::SessionId, run: &Run) -> bool {
    let mut with_in_flight = run.model.clone();
    if let Some(op) = &run.in_flight {
        op.apply(&mut with_in_flight);
    }
    let actual = read_all(conn, session);
    if actual == run.model {
        return false;
    }
    assert!(
        actual == with_in_flight,
        "after the crash the vault holds neither the acknowledged writes nor those plus the \
         request in flight ({:?}).\nmissing or different: {:?}\nunexpected: {:?}",
        run.in_flight.as_ref().map(Op::name),
        diff(&run.model, &actual),
        diff(&actual, &run.model),
    );
    true
}

fn diff(a: &Model, b: &Model) -> Vec<String> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, (version, value))| format!("{k} v{version} ({} bytes)", value.len()))
        .collect()
}

/// Every secret the agent lists, with its current version and value; the retained history
/// of each must be consecutive versions ending at the current one.
fn read_all(conn: &mut Conn, session: &avp_protocol::SessionId) -> Model {
    let mut model = Model::new();
    for name in conn.names(session) {
        let secret = match conn.retrieve(session, &name, None) {
            Response::Retrieved(s) => s,
            other => panic!("{name}: {other:?}"),
        };
        let Response::History(history) = conn.history(session, &name) else {
            panic!("history of {name}");
        };
        let versions: Vec<u32> = history.versions.iter().map(|v| v.version).collect();
        let last = *versions.last().expect("a version");
        assert_eq!(
            last, secret.version,
            "{name}: history ends at the current version"
        );
        assert!(
            versions.windows(2).all(|w| w[1] == w[0] + 1),
            "{name}: versions {versions:?} are not consecutive"
        );
        model.insert(
            name,
            (secret.version, secret.value.expose_secret().to_vec()),
        );
    }
    model
}

/// The generation and entry count of the live journal (`journal.N`, entries framed as
/// `[u32 len][u32 !len][body]`), read without the agent.
fn journal_state(vault: &Path) -> (u64, usize) {
    let generation = std::fs::read_dir(vault)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("journal.")?.parse::<u64>().ok()
        })
        .max()
        .expect("a journal");
    let bytes = std::fs::read(vault.join(format!("journal.{generation}"))).unwrap();
    let (mut at, mut entries) = (0usize, 0usize);
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + 8 + len > bytes.len() {
            break;
        }
        at += 8 + len;
        entries += 1;
    }
    (generation, entries)
}

/// Files a kill in the middle of a compaction leaves behind.
fn compaction_leftovers(vault: &Path) -> bool {
    let journals = std::fs::read_dir(vault)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("journal.")
        })
        .count();
    journals > 1 || vault.join("snapshot.age.tmp").exists()
}

#[derive(Debug, Default)]
struct Tally {
    trials: u64,
    kills: u64,
    acknowledged: u64,
    in_flight_applied: u64,
    mid_compaction: u64,
    compactions: u64,
}

/// One trial: unlock, check, stream writes, kill. Returns the model for the next trial.
fn trial(
    agent: &mut TestAgent,
    model: Model,
    rng: &mut Rng,
    tally: &mut Tally,
    compaction: bool,
) -> Model {
    let mut conn = agent.connect();
    let unlocked = agent.unlock();
    assert!(
        matches!(unlocked, Response::Unlocked),
        "the vault must unlock after a crash: {unlocked:?} (code {:?})\n{}",
        code_of(&unlocked),
        agent.logs()
    );
    let session = conn.session("crash");
    let (generation, entries) = journal_state(&agent.vault);
    let leftovers_before = compaction_leftovers(&agent.vault);
    let bulk = if compaction {
        COMPACT_AFTER_ENTRIES.saturating_sub(entries + 1)
    } else {
        0
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let writer_conn = agent.connect();
    let writer_rng = Rng::new(rng.next_u64());
    let started = {
        let session = session.clone();
        std::thread::spawn(move || {
            writer(
                writer_conn,
                session,
                model,
                writer_rng,
                bulk,
                compaction,
                ready_tx,
            )
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(600))
        .expect("bulk writes done");
    // Mostly inside the first few writes; sometimes at once, sometimes later, so that a
    // fold interrupted by one kill gets to finish in a later trial. In compaction trials the
    // next write triggers the fold (it runs inside that write, before its answer).
    let delay_us = match rng.below(20) {
        _ if compaction => rng.below(250_000),
        0 => 0,
        1..=15 => rng.below(15_000),
        _ => rng.below(250_000),
    };
    std::thread::sleep(Duration::from_micros(delay_us));
    agent.kill();
    tally.kills += 1;
    let run = started.join().expect("writer thread");
    tally.trials += 1;
    tally.acknowledged += run.acknowledged;
    if !leftovers_before && compaction_leftovers(&agent.vault) {
        tally.mid_compaction += 1;
    }
    agent.restart(AgentOptions::default());
    assert!(
        matches!(agent.unlock(), Response::Unlocked),
        "{}",
        agent.logs()
    );
    let mut conn = agent.connect();
    let session = conn.session("crash");
    let applied = verify(&mut conn, &session, &run);
    if applied {
        tally.in_flight_applied += 1;
    }
    if journal_state(&agent.vault).0 != generation {
        tally.compactions += 1;
    }
    let mut model = run.model;
    if applied && let Some(op) = &run.in_flight {
        op.apply(&mut model);
    }
    model
}

#[test]
fn acknowledged_writes_survive_sigkill_at_any_moment() {
    let trials = env_number("AVP_CRASH_TRIALS", 200);
    let compaction_trials = env_number("AVP_CRASH_COMPACTION_TRIALS", 6);
    let mut rng = Rng::from_env("crash");
    let mut agent = TestAgent::start_with(AgentOptions {
        // Per-request debug lines would make the log the bottleneck.
        env: vec![("AVP_LOG".into(), "warn".into())],
        ..Default::default()
    });
    agent.init();
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut model = Model::new();
    // Spread the compaction trials over the run.
    let every = (trials / compaction_trials.max(1)).max(1);
    for i in 0..trials + compaction_trials {
        let compaction = compaction_trials > 0 && i % (every + 1) == every;
        model = trial(&mut agent, model, &mut rng, &mut tally, compaction);
    }
    eprintln!(
        "crash: {} trials ({compaction_trials} aimed at compaction) in {:.1}s: {} SIGKILLs, \
         {} acknowledged writes, 0 lost; the request in flight had landed {} times; \
         {} kills landed mid-compaction (a temporary snapshot or a second journal left behind); \
         {} trials crossed a compaction",
        tally.trials,
        started.elapsed().as_secs_f64(),
        tally.kills,
        tally.acknowledged,
        tally.in_flight_applied,
        tally.mid_compaction,
        tally.compactions,
    );
    assert!(tally.acknowledged > trials, "the trials really wrote");
    assert!(
        compaction_trials == 0 || tally.compactions > 0,
        "no trial crossed a compaction: the compaction trials missed their aim"
    );
}
