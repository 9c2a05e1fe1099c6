//! Agents and vaults for the measurements: a release agent on temporary paths, and vaults
//! pre-filled through the agent's own library (one snapshot write instead of N fsyncs).

use avp_agent::storage::BackendSettings;
use avp_agent::storage::local::disk::DiskVault;
use avp_protocol::{
    ExpiryChange, Labels, Passphrase, Request, Response, SecretName, SecretValue, SessionId,
    Timestamp, WorkspaceId, frame,
};
use avp_tests::{AgentOptions, Conn, TEST_PASSPHRASE, TestAgent};
use std::path::Path;

/// The secret the RETRIEVE rows read.
pub const BENCH_NAME: &str = "BENCH_KEY";
/// Value size of every secret the benchmark stores.
pub const VALUE_LEN: usize = 1024;
/// Most secrets one workspace may hold (PROTOCOL.md §10); bigger vaults spread over workspaces.
const PER_WORKSPACE: usize = 10_000;

/// A value of `VALUE_LEN` bytes that differs per `seed`.
pub fn value(seed: usize) -> Vec<u8> {
    (0..VALUE_LEN)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// A release agent with logging at `info` (what a user runs).
pub fn start_agent(reuse_dir: Option<&Path>, extra: &[&str]) -> TestAgent {
    start_wrapped(reuse_dir, extra, Vec::new())
}

/// Like [`start_agent`], run through `wrapper` (e.g. `setpriv …`).
pub fn start_wrapped(reuse_dir: Option<&Path>, extra: &[&str], wrapper: Vec<String>) -> TestAgent {
    TestAgent::start_with(AgentOptions {
        args: extra.iter().map(|s| (*s).to_owned()).collect(),
        env: vec![("AVP_LOG".into(), "info".into())],
        reuse_dir: reuse_dir.map(Path::to_path_buf),
        wrapper,
    })
}

/// As root, `RLIMIT_MEMLOCK` does not apply (`CAP_IPC_LOCK`): run the agent without that
/// capability so it meets the limit a normal user has.
pub fn as_a_normal_user() -> Vec<String> {
    if nix::unistd::geteuid().is_root() {
        [
            "setpriv",
            "--bounding-set",
            "-ipc_lock",
            "--inh-caps",
            "-ipc_lock",
        ]
        .map(str::to_owned)
        .to_vec()
    } else {
        Vec::new()
    }
}

/// An unlocked agent holding `BENCH_NAME` on `extra` args (e.g. a Redis backend).
pub fn agent_with_secret_on(extra: &[&str]) -> (TestAgent, SessionId) {
    let agent = start_agent(None, extra);
    agent.init();
    let mut conn = agent.connect();
    let s = session(&mut conn, "default");
    match conn.store(&s, BENCH_NAME, &value(0)) {
        Response::Stored(_) => {}
        other => panic!("store: {other:?}"),
    }
    (agent, s)
}

/// A session on `workspace`.
pub fn session(conn: &mut Conn, workspace: &str) -> SessionId {
    conn.session(workspace)
}

/// The frame of `RETRIEVE BENCH_NAME` and the payload length of its answer.
pub fn retrieve_frame(conn: &mut Conn, session: &SessionId) -> (Vec<u8>, usize) {
    let request = Request::Retrieve {
        session: session.clone(),
        name: SecretName::new(BENCH_NAME).expect("valid"),
        version: None,
    };
    let bytes = frame::encode(&request).expect("encode").to_vec();
    let response = frame::encode(&conn.call(&request)).expect("encode").len() - 4;
    (bytes, response)
}

/// The frame of a STORE of `value` under `name`.
pub fn store_frame(session: &SessionId, name: &str, value: &[u8]) -> Vec<u8> {
    let request = Request::Store {
        session: session.clone(),
        name: SecretName::new(name).expect("valid"),
        value: SecretValue::from_slice(value),
        labels: None,
        expires_at: avp_protocol::ExpiryChange::Keep,
    };
    frame::encode(&request).expect("encode").to_vec()
}

/// An unlocked agent holding `BENCH_NAME`, with a session on `default`.
pub fn agent_with_secret() -> (TestAgent, SessionId) {
    agent_with_secret_on(&[])
}

/// Writes a vault of `count` secrets of `VALUE_LEN` bytes into `base/vault` (the layout
/// `TestAgent` uses with `reuse_dir`), in workspaces `w0`, `w1`… of at most 10,000 each.
pub fn populate(base: &Path, count: usize, work_factor: u8) {
    let dir = base.join("vault");
    avp_agent::fsutil::ensure_private_dir(&dir, "vault directory").expect("vault dir");
    let settings = BackendSettings::default();
    let pass = Passphrase::new(TEST_PASSPHRASE);
    let (mut disk, mut store) =
        DiskVault::create(&dir, &pass, work_factor, settings).expect("create the vault");
    let now = Timestamp::now();
    for i in 0..count {
        let ws = WorkspaceId::new(format!("w{}", i / PER_WORKSPACE)).expect("valid");
        let name = SecretName::new(format!("s{i:06}")).expect("valid");
        let (change, _) = store
            .plan_store(
                &ws,
                &name,
                SecretValue::from_slice(&value(i)),
                Some(Labels::empty()),
                ExpiryChange::Keep,
                now,
            )
            .expect("plan");
        store.apply(&change).expect("apply");
    }
    disk.compact(&store, now).expect("write the snapshot");
}

/// `VmRSS` and `VmLck` of a process, in bytes.
pub fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmLck:"))
}
