//! Connection threads (agent `server`): the thread the kernel wakes for a new client serves
//! it, and threads are kept for the next clients instead of one being created (and a wake-up
//! of another CPU paid) per connection; after a burst, the spare threads go.

use avp_tests::TestAgent;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The agent's connection threads (named `avp-conn`) now, by thread id.
fn connection_threads(pid: u32) -> BTreeSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "avp-conn")
        })
        .filter_map(|task| task.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn one_shot_clients_are_served_by_the_same_few_threads() {
    let agent = TestAgent::start_initialized();
    let pid = agent.pid();
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let mut conn = agent.connect();
        // While a client is being served, note who is there.
        seen.extend(connection_threads(pid));
        conn.session("default");
    }
    // A client that arrives before the previous one's thread is back waiting is handed to
    // a new thread, so a few may be made (at most the 4 spares, the one waiting, and one
    // more); never one per client.
    assert!(
        seen.len() <= 6,
        "50 clients one after another met {} connection threads",
        seen.len()
    );
}

#[test]
fn after_a_burst_only_the_spare_threads_stay() {
    let agent = TestAgent::start_initialized();
    let pid = agent.pid();
    let burst: Vec<_> = (0..40).map(|_| agent.connect()).collect();
    let during = connection_threads(pid).len();
    // One thread per client, and one more waiting for the next client.
    assert!(during > 40, "40 open clients, {during} connection threads");
    drop(burst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = connection_threads(pid).len();
        // The spare threads (4) and the one waiting for the next client.
        if left <= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} connection threads still there after the burst"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // And they still serve.
    agent.connect().session("default");
}
