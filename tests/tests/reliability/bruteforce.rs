//! Brute force: wrong passphrases cost the documented backoff (state.rs `backoff`: 100 ms,
//! doubling, at most 10 s — the n-th consecutive failure delays the next attempt), whether
//! they come one after another or all at once from many connections; they leave the vault
//! files untouched; and a right passphrase arriving meanwhile is not starved.
//!
//! CI runs 5 attempts (≥ 1.5 s). `AVP_BRUTE_FORCE_ATTEMPTS=10` runs the documented ten
//! (≥ 32.7 s).

use avp_protocol::{ErrorCode, Passphrase, Request, Response};
use avp_tests::rng::env_number;
use avp_tests::wire::code_of;
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The delay after the n-th consecutive failure (a copy of the documented schedule, so a
/// change to the agent's schedule fails here).
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(100 * (1u64 << (failures - 1).min(16))).min(Duration::from_secs(10))
}

/// The least time `attempts` consecutive wrong passphrases can take: every attempt after
/// the first waits for the backoff of the failures before it.
fn minimum(attempts: u32) -> Duration {
    (1..attempts).map(backoff).sum()
}

fn wrong(conn: &mut Conn, guess: u32) -> ErrorCode {
    let answer = conn.call(&Request::Unlock {
        passphrase: Passphrase::new(&format!("guess {guess}")),
    });
    code_of(&answer).unwrap_or_else(|| panic!("a wrong passphrase unlocked: {answer:?}"))
}

fn snapshot_files(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                (std::fs::read(&path).unwrap(), meta.modified().unwrap()),
            )
        })
        .collect()
}

fn locked_agent() -> TestAgent {
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("AVP_LOG".into(), "info".into())],
        ..Default::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let session = conn.session("default");
    assert!(matches!(
        conn.store(&session, "KEEP", b"kept"),
        Response::Stored(_)
    ));
    assert!(matches!(conn.lock(), Response::Locked));
    agent
}

#[test]
fn consecutive_wrong_passphrases_take_the_documented_backoff_and_change_nothing() {
    let attempts = env_number("AVP_BRUTE_FORCE_ATTEMPTS", 5) as u32;
    let agent = locked_agent();
    let before = snapshot_files(&agent.vault);
    let mut conn = agent.connect();
    let started = Instant::now();
    for guess in 0..attempts {
        assert_eq!(wrong(&mut conn, guess), ErrorCode::AuthenticationFailed);
    }
    let took = started.elapsed();
    let least = minimum(attempts);
    eprintln!(
        "bruteforce: {attempts} wrong passphrases in a row took {took:?} (at least {least:?})"
    );
    assert!(
        took >= least,
        "{attempts} wrong passphrases took only {took:?}"
    );
    assert_eq!(
        snapshot_files(&agent.vault),
        before,
        "the vault files are untouched"
    );
    // The right passphrase still waits for the last failure's backoff, then works.
    let started = Instant::now();
    assert!(matches!(agent.unlock(), Response::Unlocked));
    assert!(started.elapsed() >= backoff(attempts));
    let session = conn.session("default");
    assert_eq!(conn.value(&session, "KEEP"), Ok(b"kept".to_vec()));
}

#[test]
fn concurrent_wrong_passphrases_are_spaced_by_the_backoff_too() {
    let attempts = 5;
    let agent = locked_agent();
    // One connection per guess, all sent at the same moment.
    let mut conns: Vec<Conn> = (0..attempts).map(|_| agent.connect()).collect();
    let started = Instant::now();
    let threads: Vec<_> = conns
        .drain(..)
        .enumerate()
        .map(|(i, mut conn)| {
            std::thread::spawn(move || (wrong(&mut conn, i as u32), Instant::now()))
        })
        .collect();
    let mut answered: Vec<Instant> = threads
        .into_iter()
        .map(|t| {
            let (code, at) = t.join().unwrap();
            assert_eq!(code, ErrorCode::AuthenticationFailed);
            at
        })
        .collect();
    answered.sort();
    let took = answered.last().unwrap().duration_since(started);
    eprintln!(
        "bruteforce: {attempts} concurrent wrong passphrases took {took:?} (at least {:?})",
        minimum(attempts)
    );
    assert!(
        took >= minimum(attempts),
        "{attempts} concurrent guesses took only {took:?}: parallel connections bypass the \
         backoff"
    );
    // Consecutive answers are at least the growing backoff apart.
    for (i, pair) in answered.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap + Duration::from_millis(5) >= backoff(i as u32 + 1),
            "answers {i} and {} only {gap:?} apart",
            i + 1
        );
    }
}

#[test]
fn a_right_passphrase_is_not_starved_by_a_guessing_loop() {
    let agent = locked_agent();
    let socket = agent.socket.clone();
    let opened = Arc::new(AtomicBool::new(false));
    // The attacker guesses in a loop until it learns the vault is open. Its guesses keep
    // failing after that too: an unlocked vault still checks the passphrase.
    let attacker = std::thread::spawn({
        let opened = Arc::clone(&opened);
        move || {
            let mut conn = Conn::raw(&socket);
            conn.hello();
            let mut failures = 0u32;
            while !opened.load(Ordering::SeqCst) {
                let answer = conn.call(&Request::Unlock {
                    passphrase: Passphrase::new(&format!("guess {failures}")),
                });
                assert_eq!(
                    code_of(&answer),
                    Some(ErrorCode::AuthenticationFailed),
                    "a wrong passphrase was accepted: {answer:?}"
                );
                failures += 1;
                assert!(failures < 20, "the attacker was never stopped");
            }
            failures
        }
    });
    // Let it build up a backoff (3 failures: 0 + 0.1 + 0.2 s, next waits 0.4 s).
    std::thread::sleep(minimum(3) + Duration::from_millis(50));
    let started = Instant::now();
    assert!(matches!(agent.unlock(), Response::Unlocked));
    let waited = started.elapsed();
    opened.store(true, Ordering::SeqCst);
    let failures = attacker.join().unwrap();
    eprintln!(
        "bruteforce: a right passphrase during a guessing loop waited {waited:?}; the \
         attacker had failed {failures} times"
    );
    // At most the attempt already queued before it, and its own turn: the backoffs of the
    // failures at the moment it arrived and the one after.
    let bound = backoff(failures) + backoff(failures.saturating_sub(1)) + Duration::from_secs(1);
    assert!(
        waited <= bound,
        "the right passphrase waited {waited:?} (bound {bound:?})"
    );
    assert!((3..=6).contains(&failures), "{failures} failures");
}
