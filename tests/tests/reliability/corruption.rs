//! Corruption, systematically: every vault file (identity, snapshot, journal) with a byte
//! flipped at ~40 positions spread over the whole file, truncated at several lengths, and
//! replaced by the same file of another vault (same passphrase). Each damaged vault must fail
//! unlock with `INTEGRITY_ERROR` or `AUTHENTICATION_FAILED`, be left byte for byte as it was,
//! and the agent must keep running and unlock the repaired vault.
//!
//! One exception is by design (storage/local/journal.rs): the journal cut short looks exactly like a
//! crash in the middle of an append, so it unlocks with the writes before the cut — each of
//! them intact — and still writes nothing.
//!
//! agent_lifecycle.rs checks one flip per file; this walks the files.

use avp_protocol::{ErrorCode, Response};
use avp_tests::wire::code_of;
use avp_tests::{Conn, TestAgent};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Flipped positions per file.
const FLIPS_PER_FILE: usize = 40;

/// A vault whose snapshot holds records and whose journal holds entries: > 1024 writes make
/// the agent fold the journal into a snapshot, and a few more start the next journal.
/// Returns every value written per name, so a partial state can be checked.
fn populated_agent() -> (TestAgent, BTreeMap<String, Vec<Vec<u8>>>) {
    let agent = TestAgent::start_with(avp_tests::AgentOptions {
        env: vec![("AVP_LOG".into(), "warn".into())],
        ..Default::default()
    });
    agent.init();
    let mut conn = agent.connect();
    let session = conn.session("default");
    let mut written: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for i in 0..1_030 {
        let name = format!("k{}", i % 12);
        let value = format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes();
        assert!(matches!(
            conn.store(&session, &name, &value),
            Response::Stored(_)
        ));
        written.entry(name).or_default().push(value);
    }
    assert!(matches!(conn.lock(), Response::Locked));
    (agent, written)
}

fn vault_file(agent: &TestAgent, prefix: &str) -> PathBuf {
    std::fs::read_dir(&agent.vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && !name.ends_with(".tmp")
        })
        .max()
        .unwrap_or_else(|| panic!("no {prefix} file"))
}

/// Unlock must fail with a vault error, leave `path` as `expected`, and not stop the agent.
fn assert_refused(agent: &TestAgent, path: &Path, expected: &[u8], what: &str) -> ErrorCode {
    let answer = agent.unlock();
    let code = code_of(&answer).unwrap_or_else(|| panic!("{what}: unlocked: {answer:?}"));
    assert!(
        matches!(
            code,
            ErrorCode::IntegrityError | ErrorCode::AuthenticationFailed
        ),
        "{what}: {code:?}"
    );
    assert_eq!(
        std::fs::read(path).unwrap(),
        expected,
        "{what}: file changed"
    );
    code
}

/// After a refusal that counted as a wrong passphrase, the throttle delays the next unlock
/// (the agent waits it out before answering); a correct unlock of the repaired vault resets
/// it, so the delays do not add up over the flips. Locks again afterwards.
fn reset_throttle(agent: &TestAgent) {
    let answer = agent.unlock();
    assert!(
        matches!(answer, Response::Unlocked),
        "the repaired vault: {answer:?}"
    );
    assert!(matches!(agent.connect().lock(), Response::Locked));
}

#[test]
fn every_damaged_vault_file_is_refused_and_left_untouched() {
    let (agent, written) = populated_agent();
    let files = [
        vault_file(&agent, "identity.age"),
        vault_file(&agent, "snapshot.age"),
        vault_file(&agent, "journal."),
    ];
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for path in &files {
        let original = std::fs::read(path).unwrap();
        let len = original.len();
        assert!(len > 0, "{} is empty", path.display());
        // Spread over the file, always including the first and last byte.
        let mut positions: Vec<usize> = (0..FLIPS_PER_FILE)
            .map(|i| i * len / FLIPS_PER_FILE)
            .collect();
        positions.push(len - 1);
        positions.dedup();
        for (n, at) in positions.into_iter().enumerate() {
            let mut damaged = original.clone();
            // Vary the bit: high bits break text headers, low bits break binary.
            damaged[at] ^= 1 << (n % 8);
            std::fs::write(path, &damaged).unwrap();
            let what = format!("{} byte {at} of {len}", path.display());
            let code = assert_refused(&agent, path, &damaged, &what);
            *refusals.entry(code.to_string()).or_default() += 1;
            std::fs::write(path, &original).unwrap();
            if code == ErrorCode::AuthenticationFailed {
                reset_throttle(&agent);
            }
        }
        // Truncated.
        for cut in [0, 1, len / 3, len / 2, len - 1] {
            let short = original[..cut].to_vec();
            std::fs::write(path, &short).unwrap();
            let what = format!("{} cut to {cut} of {len}", path.display());
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal.")
            {
                assert_journal_cut_is_a_torn_tail(&agent, path, &short, &written, &what);
            } else {
                assert_refused(&agent, path, &short, &what);
            }
            std::fs::write(path, &original).unwrap();
        }
    }
    // Replaced by another vault's file (the same passphrase, so only the vault differs).
    let stranger = TestAgent::start_initialized();
    {
        let mut conn = stranger.connect();
        let session = conn.session("default");
        assert!(matches!(
            conn.store(&session, "k0", b"stranger"),
            Response::Stored(_)
        ));
    }
    for (ours, theirs) in [
        (&files[0], vault_file(&stranger, "identity.age")),
        (&files[1], vault_file(&stranger, "snapshot.age")),
        (&files[2], vault_file(&stranger, "journal.")),
    ] {
        let original = std::fs::read(ours).unwrap();
        let foreign = std::fs::read(theirs).unwrap();
        std::fs::write(ours, &foreign).unwrap();
        let what = format!("{} from another vault", ours.display());
        let code = assert_refused(&agent, ours, &foreign, &what);
        assert_eq!(code, ErrorCode::IntegrityError, "{what}");
        std::fs::write(ours, &original).unwrap();
    }
    eprintln!("corruption: refusals by code: {refusals:?}");
    // Repaired: everything is there, and the agent never stopped.
    assert!(avp_tests::sys::alive(agent.pid()));
    assert!(matches!(agent.unlock(), Response::Unlocked));
    let mut conn = agent.connect();
    let session = conn.session("default");
    for (name, values) in &written {
        assert_eq!(
            conn.value(&session, name).as_ref(),
            Ok(values.last().unwrap())
        );
    }
}

/// A journal cut short unlocks with a prefix of the writes: each secret holds one of the
/// values written to it, in order, and nothing is written to the file.
fn assert_journal_cut_is_a_torn_tail(
    agent: &TestAgent,
    path: &Path,
    short: &[u8],
    written: &BTreeMap<String, Vec<Vec<u8>>>,
    what: &str,
) {
    let answer = agent.unlock();
    assert!(matches!(answer, Response::Unlocked), "{what}: {answer:?}");
    let mut conn: Conn = agent.connect();
    let session = conn.session("default");
    for (name, values) in written {
        let Response::Retrieved(secret) = conn.retrieve(&session, name, None) else {
            panic!("{what}: {name} lost although it is in the snapshot");
        };
        let held = secret.value.expose_secret();
        let index = values
            .iter()
            .position(|v| v == held)
            .unwrap_or_else(|| panic!("{what}: {name} holds a value never written"));
        assert_eq!(secret.version as usize, index + 1, "{what}: {name} version");
    }
    assert!(matches!(conn.lock(), Response::Locked));
    assert_eq!(
        std::fs::read(path).unwrap(),
        short,
        "{what}: reads never write"
    );
}
