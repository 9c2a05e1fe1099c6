//! Resource exhaustion: a flood of idle connections, slow-loris writers, a full connection
//! table and thousands of abandoned sessions must not lock out a real client, and the
//! agent's descriptors and memory must come back down afterwards.
//!
//! Timeouts are real (a real process on a real socket), kept short with the hidden flags.

use avp_protocol::{Request, Response};
use avp_tests::sys::{fd_count, raise_fd_limit, rss};
use avp_tests::{AgentOptions, Conn, TestAgent};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh client's full round: connect, Hello, AUTHENTICATE, RETRIEVE. Returns how long it
/// took.
fn fresh_retrieve(agent: &TestAgent) -> Duration {
    let started = Instant::now();
    let mut conn = agent.connect();
    let session = conn.session("default");
    assert_eq!(conn.value(&session, "KEY"), Ok(b"value".to_vec()));
    started.elapsed()
}

/// A client that sends one byte of a frame per second, as long as the agent lets it.
/// Returns how long after its first byte the agent closed it.
fn slow_loris(socket: std::path::PathBuf) -> Duration {
    let mut conn = Conn::raw(&socket);
    let hello = conn.try_call(&Request::Hello {
        version: avp_protocol::PROTOCOL_VERSION,
    });
    if hello.is_none() {
        // Evicted at the cap before it could even begin (its Hello half-read when another
        // newcomer came): cut at once.
        return Duration::ZERO;
    }
    // A Discover frame (length 1, variant 1), sent a byte at a time, then more junk.
    let bytes = [
        0u8, 0, 0, 1, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    ];
    let started = Instant::now();
    conn.stream
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    for byte in bytes.iter().cycle().take(60) {
        if conn.stream.write_all(&[*byte]).is_err() {
            return started.elapsed();
        }
        // Sleep a second, but notice at once if the agent closes the connection.
        let mut buf = [0u8; 64];
        match conn.stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => panic!("the agent answered a frame that never completed"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return started.elapsed(),
        }
    }
    panic!("a slow-loris writer was served for a minute");
}

#[test]
fn a_thousand_idle_connections_and_slow_loris_writers_do_not_lock_out_a_client() {
    avp_tests::require_root!("it counts a non-dumpable process's descriptors in /proc/<pid>/fd");
    raise_fd_limit();
    let frame_timeout = Duration::from_secs(2);
    let idle_timeout = Duration::from_secs(4);
    let cap = 256;
    let agent = TestAgent::start_with(AgentOptions {
        args: vec![
            "--max-connections".into(),
            cap.to_string(),
            "--frame-timeout".into(),
            "2s".into(),
            "--connection-idle-timeout".into(),
            "4s".into(),
        ],
        env: vec![("AVP_LOG".into(), "info".into())],
        ..Default::default()
    });
    agent.init();
    let pid = agent.pid();
    {
        let mut conn = agent.connect();
        let session = conn.session("default");
        assert!(matches!(
            conn.store(&session, "KEY", b"value"),
            Response::Stored(_)
        ));
    }
    // Warm up, then take the baseline.
    for _ in 0..20 {
        fresh_retrieve(&agent);
    }
    std::thread::sleep(Duration::from_millis(200));
    let (fds_before, rss_before) = (fd_count(pid), rss(pid));

    // 1,000 connections: half said Hello, half never sent a byte. All stay open on our side.
    let flood_started = Instant::now();
    let mut idle: Vec<UnixStream> = Vec::with_capacity(1000);
    for i in 0..1000 {
        if i % 2 == 0 {
            let mut conn = Conn::raw(&agent.socket);
            // An evicted connection's Hello may find the door closed: that is the point.
            let _ = conn.try_call(&Request::Hello {
                version: avp_protocol::PROTOCOL_VERSION,
            });
            idle.push(conn.stream);
        } else {
            idle.push(UnixStream::connect(&agent.socket).expect("connect"));
        }
    }
    let loris: Vec<_> = (0..4)
        .map(|_| {
            let socket = agent.socket.clone();
            std::thread::spawn(move || slow_loris(socket))
        })
        .collect();
    // While the flood and the slow writers are on, real clients are served promptly.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        slowest = slowest.max(fresh_retrieve(&agent));
        std::thread::sleep(Duration::from_millis(100));
    }
    let fds_during = fd_count(pid);
    let rss_during = rss(pid);
    // At the cap a partial frame is the first to make room for a newcomer, so a slow
    // writer is cut then, or by the frame timeout at the latest (agent_hostile.rs pins the
    // timeout itself, below the cap).
    for thread in loris {
        let cut_after = thread.join().expect("slow-loris thread");
        assert!(
            cut_after < frame_timeout + Duration::from_secs(3),
            "a slow-loris writer was cut after {cut_after:?} (frame timeout {frame_timeout:?})"
        );
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "a client waited {slowest:?} during the flood"
    );
    // The cap holds: the agent never has much more than `cap` connections open, however
    // many sockets we hold.
    assert!(
        fds_during <= fds_before + cap + 8,
        "{fds_during} fds open during the flood (cap {cap}, {fds_before} before)"
    );
    // The idle timeout closes what eviction left, although we still hold every socket.
    wait_until(
        "idle connections to time out",
        idle_timeout + Duration::from_secs(5),
        || fd_count(pid) <= fds_before + 2,
    );
    let idle_closed_after = flood_started.elapsed();
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        fresh_retrieve(&agent);
    }
    let (fds_after, rss_after) = (fd_count(pid), rss(pid));
    eprintln!(
        "exhaustion: 1000 idle connections + 4 slow-loris writers (1 byte/s), cap {cap}: \
         slowest fresh RETRIEVE {slowest:?}; fds {fds_before} before, {fds_during} during, \
         {fds_after} after (idle ones closed {idle_closed_after:?} after the flood began); \
         RSS {} KiB before, {} KiB during, {} KiB after",
        rss_before / 1024,
        rss_during / 1024,
        rss_after / 1024
    );
    assert!(
        fds_after <= fds_before + 2,
        "fds {fds_before} → {fds_after}"
    );
    assert!(
        rss_after <= rss_before + 16 * MIB,
        "memory did not come back: {rss_before} → {rss_after} bytes"
    );
}

#[test]
fn at_a_full_table_of_half_sent_frames_a_newcomer_evicts_one_of_them() {
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--max-connections".into(), "8".into()],
        ..Default::default()
    });
    // Eight connections, each in the middle of a frame: none is idle. (Which partial frame
    // is the oldest depends on thread scheduling; the order is pinned by the server's unit
    // test.)
    let mut half_sent = Vec::new();
    for _ in 0..8 {
        let mut conn = agent.connect();
        conn.stream.write_all(&[0, 0]).unwrap();
        conn.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        half_sent.push(conn);
    }
    // The newcomer is served at once, not refused until the frame timeout (10 s).
    let started = Instant::now();
    let mut conn = agent.connect();
    assert!(matches!(
        conn.call(&Request::Discover),
        Response::Discover(_)
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    // Exactly one partial frame made room; the others are still waited for.
    let mut closed = 0;
    for other in &mut half_sent {
        let mut byte = [0u8; 1];
        match other.stream.read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a half-sent frame got {other:?}"),
        }
    }
    assert_eq!(closed, 1, "one connection evicted");
}

/// A same-uid attacker keeping every slot of the table filled with connections that sent
/// one header byte and nothing more, re-opening each one as soon as the agent drops it.
/// Counts the connections it has opened, so the test can see the flood is still on.
struct HalfFrameFlood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    opened: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HalfFrameFlood {
    fn start(socket: std::path::PathBuf, connections: usize) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let opened = std::sync::Arc::new(AtomicU64::new(0));
        let (stopping, counter) = (stop.clone(), opened.clone());
        let thread = std::thread::spawn(move || {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            use std::os::fd::AsFd;
            let open = || {
                let mut stream = UnixStream::connect(&socket).expect("connect");
                // The first byte of a frame's length: the agent now waits for the rest.
                let _ = stream.write_all(&[0]);
                counter.fetch_add(1, Ordering::Relaxed);
                stream
            };
            let mut streams: Vec<UnixStream> = (0..connections).map(|_| open()).collect();
            while !stopping.load(Ordering::Relaxed) {
                // Readable means closed by the agent (or refused with an answer, then closed).
                let dropped: Vec<usize> = {
                    let mut fds: Vec<PollFd> = streams
                        .iter()
                        .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
                        .collect();
                    if poll(&mut fds, PollTimeout::from(100u8)).unwrap_or(0) == 0 {
                        continue;
                    }
                    fds.iter()
                        .enumerate()
                        .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                        .map(|(i, _)| i)
                        .collect()
                };
                for i in dropped {
                    streams[i] = open();
                }
            }
        });
        Self {
            stop,
            opened,
            thread: Some(thread),
        }
    }

    fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for HalfFrameFlood {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A fresh client's round (connect, Hello, AUTHENTICATE, RETRIEVE) that reports a refusal
/// instead of panicking: the time it took, or what the agent answered instead.
fn try_fresh_retrieve(agent: &TestAgent) -> Result<Duration, String> {
    let started = Instant::now();
    let mut conn = Conn::raw(&agent.socket);
    let hello = conn.try_call(&Request::Hello {
        version: avp_protocol::PROTOCOL_VERSION,
    });
    if !matches!(hello, Some(Response::Hello { .. })) {
        return Err(format!("Hello answered {hello:?}"));
    }
    let session = conn.session("default");
    match conn.value(&session, "KEY") {
        Ok(value) if value == b"value" => Ok(started.elapsed()),
        other => Err(format!("RETRIEVE answered {other:?}")),
    }
}

#[test]
fn a_flood_of_half_sent_frames_at_the_cap_does_not_lock_out_a_client() {
    raise_fd_limit();
    let cap = 256;
    // The default frame timeout (10 s): the flood's frames never time out during the test.
    let agent = TestAgent::start_with(AgentOptions {
        args: vec!["--max-connections".into(), cap.to_string()],
        env: vec![("AVP_LOG".into(), "error".into())],
        ..Default::default()
    });
    agent.init();
    {
        let mut conn = agent.connect();
        let session = conn.session("default");
        assert!(matches!(
            conn.store(&session, "KEY", b"value"),
            Response::Stored(_)
        ));
    }
    for _ in 0..20 {
        try_fresh_retrieve(&agent).expect("served before the flood");
    }
    let flood = HalfFrameFlood::start(agent.socket.clone(), cap);
    // The table is full of half-sent frames once the flood has opened them all.
    wait_until(
        "the flood to fill the table",
        Duration::from_secs(10),
        || flood.opened() >= cap as u64,
    );
    let mut times = Vec::new();
    for round in 0..5 {
        // The flood goes on between rounds: the attacker re-opened what was dropped.
        let before = flood.opened();
        let took = try_fresh_retrieve(&agent)
            .unwrap_or_else(|why| panic!("round {round}: a fresh client was refused: {why}"));
        times.push(took);
        wait_until("the flood to re-open", Duration::from_secs(5), || {
            flood.opened() > before
        });
    }
    let opened = flood.opened();
    drop(flood);
    eprintln!(
        "half-frame flood: {opened} connections opened at cap {cap}; fresh RETRIEVE rounds \
         took {times:?}"
    );
    let slowest = times.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_millis(50),
        "a fresh RETRIEVE took {slowest:?} during the flood: {times:?}"
    );
}

#[test]
fn thousands_of_abandoned_sessions_keep_the_table_bounded() {
    let agent = TestAgent::start_with(AgentOptions {
        env: vec![("AVP_LOG".into(), "info".into())],
        ..Default::default()
    });
    agent.init();
    let pid = agent.pid();
    let mut conn = agent.connect();
    let capacity = 10_000; // session.rs DEFAULT_CAPACITY
    let open = |conn: &mut Conn, n: usize| {
        let mut last = None;
        for _ in 0..n {
            last = Some(conn.session("default"));
        }
        last.expect("a session")
    };
    let started = Instant::now();
    open(&mut conn, capacity);
    let filled_in = started.elapsed();
    let rss_full = rss(pid);
    let started = Instant::now();
    let newest = open(&mut conn, 2 * capacity);
    let past_capacity_in = started.elapsed();
    let rss_after = rss(pid);
    let status = conn.status();
    eprintln!(
        "sessions: {} opened and abandoned; table holds {} live; first {capacity} in \
         {filled_in:?}, the next {} (each evicting one) in {past_capacity_in:?}; RSS {} KiB at \
         capacity, {} KiB after",
        3 * capacity,
        status.sessions,
        2 * capacity,
        rss_full / 1024,
        rss_after / 1024,
    );
    assert_eq!(status.sessions, capacity as u64, "the table stays bounded");
    assert!(
        rss_after <= rss_full + 8 * MIB,
        "sessions past the cap cost memory: {rss_full} → {rss_after}"
    );
    // Opening a session at capacity costs about what it costs below it.
    assert!(
        past_capacity_in < filled_in * 6 + Duration::from_secs(2),
        "at capacity each AUTHENTICATE got slow: {filled_in:?} for the first {capacity}, \
         {past_capacity_in:?} for the next {}",
        2 * capacity
    );
    // The newest session works; the agent serves on.
    assert!(matches!(
        conn.store(&newest, "k", b"v"),
        Response::Stored(_)
    ));
}
