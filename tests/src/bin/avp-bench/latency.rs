//! RETRIEVE round trips and throughput against the echo-server floor, and `avp get` as a
//! new process against `avp --version`.

use crate::Config;
use crate::setup;
use crate::stats::{Row, Samples, fmt_duration};
use crate::wire::{EchoServer, round_trip};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Alternates blocks of agent and floor samples so drift on a noisy machine hits both.
fn interleaved(
    blocks: usize,
    per_block: usize,
    mut agent: impl FnMut() -> Duration,
    mut floor: impl FnMut() -> Duration,
) -> (Samples, Samples) {
    let (mut a, mut f) = (Vec::new(), Vec::new());
    for _ in 0..blocks {
        a.extend((0..per_block).map(|_| agent()));
        f.extend((0..per_block).map(|_| floor()));
    }
    (Samples::new(a), Samples::new(f))
}

/// RETRIEVE p50/p99 over one persistent connection, against the echo floor, with every
/// process of the measurement on `cpus` (agent, echo server and client inherit it).
fn round_trips(config: &Config, label: &str) -> (Samples, Samples) {
    let (agent, session) = setup::agent_with_secret();
    let mut conn = agent.connect();
    let (request, reply_len) = setup::retrieve_frame(&mut conn, &session);
    let echo = EchoServer::start(reply_len);
    let mut echo_conn = echo.connect();
    let mut buf = Vec::new();
    let mut buf2 = Vec::new();
    for _ in 0..config.scale(200, 2_000) {
        round_trip(&mut conn.stream, &request, &mut buf);
        round_trip(&mut echo_conn, &request, &mut buf2);
    }
    eprintln!("avp-bench:   round trips, {label}");
    interleaved(
        10,
        config.scale(50, 2_000),
        || round_trip(&mut conn.stream, &request, &mut buf),
        || round_trip(&mut echo_conn, &request, &mut buf2),
    )
}

/// Restricts this process, and every process and thread it starts from now on, to `cpus`.
fn pin(cpus: &[usize]) {
    let mut set = nix::sched::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).expect("cpu index");
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// RETRIEVE round trips, first with client, agent and floor on one CPU — the comparison
/// the target is about: the agent's work per request against a bare echo — then with the
/// scheduler free to place them, reported as measured.
///
/// Why both: on a VM a wake-up across CPUs costs ~15 µs, and where the scheduler puts the
/// server's thread relative to the client's is a lottery the agent and the echo server
/// do not always draw alike; unpinned, the ratio measures that draw more than the agent.
pub fn retrieve_round_trip(config: &Config) -> Vec<Row> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    pin(&[0]);
    let (a, f) = round_trips(config, "client, agent and floor on CPU 0");
    pin(&(0..cpus).collect::<Vec<_>>());
    let (free_a, free_f) = round_trips(config, "free placement");
    let mut free_p50 = Row::ratio(
        "RETRIEVE round trip p50, free placement",
        free_a.p50(),
        free_f.p50(),
        f64::INFINITY,
    );
    free_p50.target = "— (reported)".into();
    let mut free_p99 = Row::ratio(
        "RETRIEVE round trip p99, free placement",
        free_a.p99(),
        free_f.p99(),
        f64::INFINITY,
    );
    free_p99.target = "— (reported)".into();
    vec![
        Row::ratio(
            "RETRIEVE round trip p50 (1 KiB value, one CPU)",
            a.p50(),
            f.p50(),
            1.3,
        ),
        Row::ratio(
            "RETRIEVE round trip p99 (1 KiB value, one CPU)",
            a.p99(),
            f.p99(),
            2.0,
        ),
        free_p50,
        free_p99,
    ]
}

/// Requests per second from `clients` connections looping for `duration`.
fn throughput(
    clients: usize,
    duration: Duration,
    connect: impl Fn() -> UnixStream,
    request: &[u8],
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let mut stream = connect();
            let request = request.to_vec();
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut count = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    round_trip(&mut stream, &request, &mut buf);
                    count += 1;
                }
                done.fetch_add(count, Ordering::Relaxed);
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// RETRIEVE throughput with 16 concurrent connections.
pub fn retrieve_throughput(config: &Config) -> Vec<Row> {
    let (agent, session) = setup::agent_with_secret();
    let mut conn = agent.connect();
    let (request, reply_len) = setup::retrieve_frame(&mut conn, &session);
    let echo = EchoServer::start(reply_len);
    let duration = Duration::from_millis(config.scale(300, 3_000) as u64);
    let connect_agent = || agent.connect().stream;
    // Alternate twice each, keep the best of each (least disturbed by the machine).
    let mut agent_rate: f64 = 0.0;
    let mut floor_rate: f64 = 0.0;
    for _ in 0..2 {
        agent_rate = agent_rate.max(throughput(16, duration, connect_agent, &request));
        floor_rate = floor_rate.max(throughput(16, duration, || echo.connect(), &request));
    }
    let ratio = agent_rate / floor_rate;
    vec![Row {
        figure: "RETRIEVE throughput, 16 connections".into(),
        measured: format!("{agent_rate:.0} req/s"),
        floor: format!("{floor_rate:.0} req/s"),
        ratio: format!("{ratio:.2}×"),
        target: "≥ 0.5× floor".into(),
        met: ratio >= 0.5,
    }]
}

fn time_process(mut command: Command) -> Duration {
    let started = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run avp");
    let elapsed = started.elapsed();
    assert!(status.success(), "avp failed: {status}");
    elapsed
}

/// `avp get NAME` as a new process against `avp --version` and `/bin/true`, one run of each
/// in turn. Targets (issue 16 "Fast"): p50 ≤ 1.2× `avp --version` and ≤ 2× `/bin/true`.
///
/// Why one of each in turn, not blocks: a process start costs ~1–2 ms here, and this VM's
/// speed drifts by more than a tenth over tens of milliseconds, so in blocks of 30 runs the
/// block that happened to run in a slow spell decided the ratio (the same binaries measured
/// 1.17× interleaved and 1.36× in blocks, with `avp get` against a missing socket — no
/// agent at all — at 1.04× and 1.33×).
pub fn cli_get(config: &Config) -> Vec<Row> {
    let (agent, _session) = setup::agent_with_secret();
    let avp = avp_tests::avp_bin();
    let get = || {
        let mut c = Command::new(&avp);
        c.env_clear()
            .env("AVP_SOCK", &agent.socket)
            .args(["get", setup::BENCH_NAME]);
        time_process(c)
    };
    let version = || {
        let mut c = Command::new(&avp);
        c.env_clear().arg("--version");
        time_process(c)
    };
    let truth = || {
        let mut c = Command::new("/bin/true");
        c.env_clear();
        time_process(c)
    };
    let runs = config.scale(30, 300);
    let (mut gets, mut versions, mut trues) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        gets.push(get());
        versions.push(version());
        trues.push(truth());
    }
    let (g, v, t) = (
        Samples::new(gets),
        Samples::new(versions),
        Samples::new(trues),
    );
    let mut against_version = Row::ratio(
        "`avp get NAME` as a new process, p50",
        g.p50(),
        v.p50(),
        1.2,
    );
    against_version.floor = format!("{} (`avp --version`)", fmt_duration(v.p50()));
    let mut against_true = Row::ratio(
        "`avp get NAME` as a new process, p50",
        g.p50(),
        t.p50(),
        2.0,
    );
    against_true.floor = format!("{} (`/bin/true`)", fmt_duration(t.p50()));
    vec![against_version, against_true]
}
