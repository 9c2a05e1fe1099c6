//! Durable STORE latency at several vault sizes against an append + fdatasync floor, and
//! unlock time against the scrypt alone.

use crate::Config;
use crate::setup;
use crate::stats::{Row, Samples, fmt_bytes, fmt_duration};
use crate::wire::round_trip;
use avp_protocol::{Passphrase, Request, Response};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// 4 KiB appends + `fdatasync` in `dir`: the least a durable write can cost there.
fn append_fsync_floor(dir: &Path, count: usize) -> Vec<Duration> {
    let path = dir.join("floor.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("floor file");
    let block = vec![0xa5u8; 4096];
    let samples = (0..count)
        .map(|_| {
            let started = Instant::now();
            file.write_all(&block).expect("append");
            file.sync_data().expect("fdatasync");
            started.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    samples
}

/// STORE samples (new 1 KiB secrets) with `size` secrets already in the vault, and floor
/// samples taken in alternating blocks.
fn store_at(size: usize, writes: usize) -> (Samples, Samples) {
    let base = tempfile::tempdir().expect("temp dir");
    setup::populate(base.path(), size, avp_tests::TEST_WORK_FACTOR);
    let agent = setup::start_agent(Some(base.path()), &[]);
    assert!(matches!(agent.unlock(), Response::Unlocked));
    let mut conn = agent.connect();
    let session = setup::session(&mut conn, "bench");
    let frames: Vec<Vec<u8>> = (0..writes)
        .map(|i| setup::store_frame(&session, &format!("new{i:06}"), &setup::value(i)))
        .collect();
    let mut buf = Vec::new();
    let mut stores = Vec::with_capacity(writes);
    let mut floor = Vec::with_capacity(writes);
    for chunk in frames.chunks(writes.div_ceil(10).max(1)) {
        stores.extend(
            chunk
                .iter()
                .map(|f| round_trip(&mut conn.stream, f, &mut buf)),
        );
        floor.extend(append_fsync_floor(&agent.vault, chunk.len()));
    }
    (Samples::new(stores), Samples::new(floor))
}

/// Durable STORE rows at each vault size.
pub fn store_latency(config: &Config) -> Vec<Row> {
    let sizes: &[usize] = if config.quick {
        &[100, 1_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let writes = config.scale(50, 2_000);
    let mut rows = Vec::new();
    let mut p50s = Vec::new();
    for &size in sizes {
        let (stores, floor) = store_at(size, writes);
        let label = format!("durable STORE p50, {size} secrets");
        rows.push(Row::ratio(&label, stores.p50(), floor.p50(), 3.0));
        let mut p99 = Row::ratio(
            &format!("durable STORE p99, {size} secrets"),
            stores.p99(),
            floor.p99(),
            f64::INFINITY,
        );
        p99.target = "— (reported)".into();
        rows.push(p99);
        p50s.push(stores.p50());
    }
    if let (Some(first), Some(last)) = (p50s.first(), p50s.last()) {
        let mut row = Row::ratio(
            &format!(
                "STORE p50 at {} vs at {} secrets",
                sizes[sizes.len() - 1],
                sizes[0]
            ),
            *last,
            *first,
            1.5,
        );
        row.floor = format!("{} (p50 at {})", fmt_duration(*first), sizes[0]);
        row.target = "≤ 1.5×".into();
        rows.push(row);
    }
    rows
}

/// Unlock with 10,000 secrets of 1 KiB against one scrypt at the same work factor, and
/// the agent's memory with them loaded.
pub fn unlock_and_memory(config: &Config) -> Vec<Row> {
    let count = config.scale(1_000, 10_000);
    let work_factor = if config.quick { 12 } else { 18 };
    let base = tempfile::tempdir().expect("temp dir");
    setup::populate(base.path(), count, work_factor);
    let agent = setup::start_wrapped(Some(base.path()), &[], setup::as_a_normal_user());
    let mut conn = agent.connect();
    let identity = std::fs::read(agent.vault.join("identity.age")).expect("identity.age");
    let (mut unlocks, mut scrypts) = (Vec::new(), Vec::new());
    for round in 0..3 {
        if round > 0 {
            assert!(matches!(conn.lock(), Response::Locked));
        }
        let started = Instant::now();
        let answer = conn.call(&Request::Unlock {
            passphrase: Passphrase::new(avp_tests::TEST_PASSPHRASE),
        });
        unlocks.push(started.elapsed());
        assert!(matches!(answer, Response::Unlocked), "{answer:?}");
        scrypts.push(scrypt_alone(&identity));
    }
    let (unlock, scrypt) = (Samples::new(unlocks).p50(), Samples::new(scrypts).p50());
    let extra = unlock.saturating_sub(scrypt);
    let mut rows = vec![Row {
        figure: format!("unlock, {count} secrets of 1 KiB (scrypt logN {work_factor})"),
        measured: fmt_duration(unlock),
        floor: format!("{} (scrypt alone)", fmt_duration(scrypt)),
        ratio: format!("+{}", fmt_duration(extra)),
        target: "≤ scrypt + 100 ms".into(),
        met: extra <= Duration::from_millis(100),
    }];
    let (rss, locked) = setup::memory_of(agent.pid());
    let payload = (count * setup::VALUE_LEN) as u64;
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
        .map_or(0, |(soft, _)| soft);
    let warned = agent.logs().contains("cannot lock memory");
    rows.push(Row {
        figure: format!("agent RSS, {count} × 1 KiB loaded"),
        measured: fmt_bytes(rss),
        floor: format!("{} payload", fmt_bytes(payload)),
        ratio: format!("{:.2}×", rss as f64 / payload as f64),
        target: "≤ 2× payload + 16 MiB".into(),
        met: rss <= 2 * payload + (16 << 20),
    });
    rows.push(Row {
        figure: "locked memory (VmLck)".into(),
        measured: fmt_bytes(locked),
        floor: format!("RLIMIT_MEMLOCK {}", fmt_bytes(limit)),
        ratio: if warned {
            "warned".into()
        } else {
            "—".into()
        },
        target: "within the limit, or a clear warning".into(),
        met: locked <= limit && (locked >= payload || warned),
    });
    rows
}

/// The cost of unwrapping the identity with age alone: one scrypt at the vault's factor.
fn scrypt_alone(identity_file: &[u8]) -> Duration {
    use age::secrecy::SecretString;
    let started = Instant::now();
    let mut id =
        age::scrypt::Identity::new(SecretString::from(avp_tests::TEST_PASSPHRASE.to_owned()));
    id.set_max_work_factor(22);
    let decryptor = age::Decryptor::new_buffered(identity_file).expect("age file");
    let mut reader = decryptor
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .expect("decrypt");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut out).expect("read");
    started.elapsed()
}

/// RSS of an agent with no vault open.
pub fn idle_memory(_config: &Config) -> Vec<Row> {
    let agent = setup::start_agent(None, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let (rss, _) = setup::memory_of(agent.pid());
    vec![Row {
        figure: "idle agent RSS".into(),
        measured: fmt_bytes(rss),
        floor: "—".into(),
        ratio: "—".into(),
        target: "≤ 10 MiB".into(),
        met: rss <= 10 << 20,
    }]
}
