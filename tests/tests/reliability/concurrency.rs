//! Concurrency: 16 clients, each on its own connection, store, rotate, delete and read
//! overlapping names for several seconds. Afterwards the answers they got must fit one
//! serial order, and the vault (live, and again after a restart) must hold exactly what
//! they were told.
//!
//! Half the names are never deleted ("kept"): each of their versions 1..=current must have
//! been handed to exactly one write (no lost update, no duplicate, no gap), and every client
//! must see its versions strictly increase. The other half ("churned") are also deleted:
//! each acknowledged delete ends one life of the secret and every life starts with exactly
//! one version 1. For every name, HISTORY must list the versions the clients were given,
//! with the times they were given, and each retained version must hold the value of the
//! write that created it.
//!
//! `AVP_CONCURRENCY_SECS` (default 4) sets the duration.

use avp_protocol::{ErrorCode, Response};
use avp_tests::rng::{Rng, env_number};
use avp_tests::{AgentOptions, TestAgent};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const KEPT: usize = 4;
const CHURNED: usize = 4;

fn name_of(i: usize) -> String {
    if i < KEPT {
        format!("kept{i}")
    } else {
        format!("churn{}", i - KEPT)
    }
}

fn is_kept(name: &str) -> bool {
    name.starts_with("kept")
}

/// One acknowledged write: the version it was given, its value and the time in its answer.
#[derive(Debug, Clone)]
struct Write {
    version: u32,
    value: Vec<u8>,
    at: i64,
}

#[derive(Debug, Default)]
struct Seen {
    writes: Vec<(String, Write)>,
    deletes: BTreeMap<String, u32>,
    ops: u64,
}

fn client(agent_socket: std::path::PathBuf, id: usize, seed: u64, until: Instant) -> Seen {
    let mut conn = avp_tests::Conn::raw(&agent_socket);
    conn.hello();
    let session = conn.session("shared");
    let mut rng = Rng::new(seed);
    let mut seen = Seen::default();
    // Per name, the last version this client saw for a kept name.
    let mut last: HashMap<String, u32> = HashMap::new();
    let mut serial = 0u64;
    while Instant::now() < until {
        let name = name_of(rng.below((KEPT + CHURNED) as u64) as usize);
        serial += 1;
        seen.ops += 1;
        let value = format!("c{id}-{serial}-{}", rng.next_u64()).into_bytes();
        let roll = rng.below(100);
        let write = if roll < 40 {
            match conn.store(&session, &name, &value) {
                Response::Stored(r) => Some(Write {
                    version: r.version,
                    value,
                    at: r.updated_at.unix(),
                }),
                other => panic!("store {name}: {other:?}"),
            }
        } else if roll < 65 {
            match conn.rotate(&session, &name, &value) {
                Response::Rotated(r) => {
                    assert_eq!(r.new_version, r.previous_version + 1, "{name}");
                    Some(Write {
                        version: r.new_version,
                        value,
                        at: r.updated_at.unix(),
                    })
                }
                Response::Error(e) if e.code == ErrorCode::SecretNotFound => None,
                other => panic!("rotate {name}: {other:?}"),
            }
        } else if roll < 75 && !is_kept(&name) {
            match conn.delete(&session, &name) {
                Response::Deleted(r) => {
                    if r.deleted {
                        *seen.deletes.entry(name.clone()).or_default() += 1;
                    }
                    None
                }
                other => panic!("delete {name}: {other:?}"),
            }
        } else {
            match conn.retrieve(&session, &name, None) {
                Response::Retrieved(secret) if is_kept(&name) => {
                    let before = last.get(&name).copied().unwrap_or(0);
                    assert!(
                        secret.version >= before,
                        "client {id} read {name} v{} after seeing v{before}",
                        secret.version
                    );
                    last.insert(name.clone(), secret.version);
                }
                Response::Retrieved(_) => {}
                Response::Error(e) if e.code == ErrorCode::SecretNotFound => {
                    assert!(
                        !is_kept(&name) || !last.contains_key(&name),
                        "{name} vanished"
                    );
                }
                other => panic!("retrieve {name}: {other:?}"),
            }
            None
        };
        if let Some(write) = write {
            if is_kept(&name) {
                let before = last.get(&name).copied().unwrap_or(0);
                assert!(
                    write.version > before,
                    "client {id} was given {name} v{} after seeing v{before}",
                    write.version
                );
                last.insert(name.clone(), write.version);
            }
            seen.writes.push((name, write));
        }
    }
    seen
}

/// Checks the agent's current state against every client's acknowledged answers.
fn check_state(
    agent: &TestAgent,
    writes: &BTreeMap<String, Vec<Write>>,
    deletes: &BTreeMap<String, u32>,
) {
    let mut conn = agent.connect();
    let session = conn.session("shared");
    let listed = conn.names(&session);
    for i in 0..KEPT + CHURNED {
        let name = name_of(i);
        let given = writes.get(&name).map(Vec::as_slice).unwrap_or_default();
        let deleted = deletes.get(&name).copied().unwrap_or(0);
        let exists = listed.contains(&name);
        let creations = given.iter().filter(|w| w.version == 1).count() as u32;
        // Every life of the secret starts with exactly one version 1 and all but the
        // current one ended with exactly one acknowledged delete.
        assert_eq!(
            creations,
            deleted + u32::from(exists),
            "{name}: {creations} creations, {deleted} deletes, exists: {exists}"
        );
        if !exists {
            continue;
        }
        let Response::History(history) = conn.history(&session, &name) else {
            panic!("history {name}");
        };
        let current = history.versions.last().expect("a version").version;
        let retained: Vec<u32> = history.versions.iter().map(|v| v.version).collect();
        let expected: Vec<u32> = (current.saturating_sub(9).max(1)..=current).collect();
        assert_eq!(retained, expected, "{name}: retained versions");
        if is_kept(&name) {
            // One life: each version handed out exactly once, none skipped.
            let mut versions: Vec<u32> = given.iter().map(|w| w.version).collect();
            versions.sort_unstable();
            assert_eq!(
                versions,
                (1..=current).collect::<Vec<_>>(),
                "{name}: every version given to exactly one write"
            );
        }
        for info in &history.versions {
            let Response::Retrieved(secret) = conn.retrieve(&session, &name, Some(info.version))
            else {
                panic!("retrieve {name} v{}", info.version);
            };
            let value = secret.value.expose_secret();
            let origin = given
                .iter()
                .find(|w| w.version == info.version && w.value == value)
                .unwrap_or_else(|| {
                    panic!(
                        "{name} v{} holds a value no client was told it wrote",
                        info.version
                    )
                });
            assert_eq!(
                origin.at,
                info.created_at.unix(),
                "{name} v{}: history time",
                info.version
            );
        }
    }
}

#[test]
fn sixteen_clients_agree_on_one_history() {
    let secs = env_number("AVP_CONCURRENCY_SECS", 4);
    let mut rng = Rng::from_env("concurrency");
    let mut agent = TestAgent::start_with(AgentOptions {
        env: vec![("AVP_LOG".into(), "warn".into())],
        ..Default::default()
    });
    agent.init();
    let until = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let socket = agent.socket.clone();
            let seed = rng.next_u64();
            std::thread::spawn(move || client(socket, id, seed, until))
        })
        .collect();
    let mut writes: BTreeMap<String, Vec<Write>> = BTreeMap::new();
    let mut deletes: BTreeMap<String, u32> = BTreeMap::new();
    let mut ops = 0;
    for thread in threads {
        let seen = thread.join().expect("client thread");
        ops += seen.ops;
        for (name, write) in seen.writes {
            writes.entry(name).or_default().push(write);
        }
        for (name, n) in seen.deletes {
            *deletes.entry(name).or_default() += n;
        }
    }
    let total_writes: usize = writes.values().map(Vec::len).sum();
    let total_deletes: u32 = deletes.values().sum();
    eprintln!(
        "concurrency: {CLIENTS} clients, {ops} operations in {secs}s: {total_writes} writes \
         and {total_deletes} deletes acknowledged"
    );
    assert!(
        total_writes > 100 && total_deletes > 5,
        "the clients really raced"
    );
    check_state(&agent, &writes, &deletes);
    // What was acknowledged is also what is on disk.
    agent.restart(AgentOptions::default());
    assert!(matches!(agent.unlock(), Response::Unlocked));
    check_state(&agent, &writes, &deletes);
}
