//! The harness behind the fuzz targets: a fresh agent state per input, served in-process by
//! the agent's own connection code on a thread, over one end of a `UnixStream::pair()`.
//!
//! Every input is the byte stream one client sends on one connection. The state starts
//! initialized and unlocked with one session open, so the fuzzer reaches the secret
//! operations: session ids are random, so inputs name the session [`PLACEHOLDER_SESSION`],
//! which the harness swaps for the live id (same length, so frames keep their lengths).
//!
//! The vault behind the state is [`FuzzKeyStore`], an in-memory key store whose passphrase
//! check is a comparison, not a scrypt: the storage under test is the in-memory store every
//! backend shares; the disk format has its own tests. The wrong-passphrase backoff is
//! turned off (`Settings::passphrase_backoff`), so it costs the fuzzer no real time.

use avp_agent::audit::Peer;
use avp_agent::state::{AgentState, Settings};
use avp_agent::storage::{Backend, BackendError, BackendSettings, KeyStore, MemoryBackend};
use avp_protocol::{Passphrase, Request, Response, SessionId, WorkspaceId, frame};
use std::sync::{Arc, Mutex};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

/// The session id inputs use; replaced by the live session's id before the bytes are sent.
pub const PLACEHOLDER_SESSION: &str =
    "avp_sess_0000000000000000000000000000000000000000000000000000000000000000";

/// The passphrase of the harness's vault (seeds use it to unlock again after a lock).
pub const PASSPHRASE: &str = "fuzz passphrase";

/// An in-memory key store: a passphrase and nothing else. Each unlock opens an empty
/// [`MemoryBackend`] — records do not survive a lock, which no fuzz property needs.
#[derive(Debug, Default)]
pub struct FuzzKeyStore {
    passphrase: Mutex<Option<String>>,
}

fn memory_backend() -> Box<dyn Backend> {
    Box::new(MemoryBackend::in_memory(BackendSettings::default()))
}

impl FuzzKeyStore {
    fn check(&self, passphrase: &Passphrase) -> Result<(), BackendError> {
        match self.passphrase.lock().unwrap().as_deref() {
            None => Err(BackendError::NotInitialized),
            Some(p) if p == passphrase.expose_secret() => Ok(()),
            Some(_) => Err(BackendError::AuthenticationFailed("wrong passphrase")),
        }
    }
}

impl KeyStore for FuzzKeyStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        "memory".into()
    }

    fn is_initialized(&self) -> Result<bool, BackendError> {
        Ok(self.passphrase.lock().unwrap().is_some())
    }

    fn init(&self, passphrase: &Passphrase, _: u8) -> Result<Box<dyn Backend>, BackendError> {
        let mut slot = self.passphrase.lock().unwrap();
        if slot.is_some() {
            return Err(BackendError::AlreadyInitialized);
        }
        *slot = Some(passphrase.expose_secret().to_owned());
        Ok(memory_backend())
    }

    fn unlock(&self, passphrase: &Passphrase) -> Result<Box<dyn Backend>, BackendError> {
        self.check(passphrase)?;
        Ok(memory_backend())
    }

    fn verify(&self, passphrase: &Passphrase) -> Result<(), BackendError> {
        self.check(passphrase)
    }

    fn change_passphrase(&self, old: &Passphrase, new: &Passphrase) -> Result<(), BackendError> {
        self.check(old)?;
        *self.passphrase.lock().unwrap() = Some(new.expose_secret().to_owned());
        Ok(())
    }
}

/// Runs inputs, one fresh agent state each.
#[derive(Debug, Default)]
pub struct Harness;

impl Harness {
    /// A harness.
    pub fn new() -> Self {
        Self
    }

    /// Sends `input` as one connection's bytes to a fresh agent state and checks what comes
    /// back. Panics (a finding) if the agent panics or answers a frame a client cannot read.
    pub fn run(&self, input: &[u8]) {
        run(input, check_answers);
    }

    /// The same on the JSON-lines wire (PROTOCOL.md §12): `input` is what follows the
    /// connection's first byte `{`, so every input exercises the JSON path. Panics (a
    /// finding) if the agent panics or writes anything but whole JSON answer lines.
    pub fn run_json(&self, input: &[u8]) {
        let mut bytes = Vec::with_capacity(input.len() + 1);
        bytes.push(b'{');
        bytes.extend_from_slice(input);
        run(&bytes, check_json_answers);
    }
}

/// The agent only serves its own uid: the harness is such a peer.
fn peer(state: &AgentState) -> Peer {
    Peer {
        uid: state.uid,
        pid: Some(std::process::id() as i32),
        exe: None,
    }
}

fn run(input: &[u8], check: fn(&[u8])) {
    let settings = Settings {
        // A wrong passphrase would otherwise make the fuzzer wait out real backoff delays.
        passphrase_backoff: false,
        ..Settings::default()
    };
    let state = Arc::new(AgentState::new(Box::new(FuzzKeyStore::default()), None, settings));
    let peer = peer(&state);
    let init = avp_agent::cmd::dispatch(
        &state,
        &peer,
        Request::Init {
            passphrase: Passphrase::new(PASSPHRASE),
            work_factor: Some(10),
        },
    );
    assert!(matches!(init, Response::Initialized), "{init:?}");
    let authenticated = avp_agent::cmd::dispatch(
        &state,
        &peer,
        Request::Authenticate {
            workspace: WorkspaceId::new("default").unwrap(),
            agent_id: "fuzz".into(),
            ttl_seconds: None,
            wait_for_unlock: false,
        },
    );
    let Response::Authenticated(info) = authenticated else {
        panic!("authenticate: {authenticated:?}");
    };
    let bytes = with_session(input, &info.session);

    let (mut client, server) = UnixStream::pair().expect("socket pair");
    let serving = Arc::clone(&state);
    let served = std::thread::spawn(move || {
        avp_agent::connection::serve_detached(serving, server, peer);
    });
    let mut writer = client.try_clone().expect("clone");
    let write = std::thread::spawn(move || {
        // The agent may close early (a bad frame): a failed write is expected then.
        let _ = writer.write_all(&bytes);
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut answers = Vec::new();
    let _ = client.read_to_end(&mut answers);
    let _ = write.join();
    served.join().expect("the connection thread panicked");
    check(&answers);
}

/// Every answer the agent wrote must be a whole frame a client can decode.
fn check_answers(mut answers: &[u8]) {
    while !answers.is_empty() {
        match frame::decode_frame::<Response>(answers) {
            Ok(Some((_, used))) => answers = &answers[used..],
            other => panic!("the agent wrote a frame a client cannot read: {other:?}"),
        }
    }
}

/// Every answer the agent wrote must be one JSON object on a line of its own, with its
/// `ok` flag and, when false, an error code and message (§12.6).
fn check_json_answers(answers: &[u8]) {
    if answers.is_empty() {
        return;
    }
    assert_eq!(answers.last(), Some(&b'\n'), "an answer line was cut off");
    for line in answers[..answers.len() - 1].split(|&b| b == b'\n') {
        let answer: serde_json::Value = match serde_json::from_slice(line) {
            Ok(answer) => answer,
            Err(err) => panic!("the agent wrote a line that is not JSON: {err}"),
        };
        match answer["ok"].as_bool() {
            Some(true) => {}
            Some(false) => {
                let code = answer["error"]["code"].as_str().expect("an error code");
                assert!(code.parse::<avp_protocol::ErrorCode>().is_ok(), "{code}");
                assert!(answer["error"]["message"].is_string(), "{answer}");
            }
            None => panic!("an answer without its ok flag: {answer}"),
        }
    }
}

/// `input` with every [`PLACEHOLDER_SESSION`] replaced by `session`.
pub fn with_session(input: &[u8], session: &SessionId) -> Vec<u8> {
    let placeholder = PLACEHOLDER_SESSION.as_bytes();
    let live = session.expose().as_bytes();
    debug_assert_eq!(placeholder.len(), live.len());
    let mut out = input.to_vec();
    let mut at = 0;
    while let Some(found) = out[at..]
        .windows(placeholder.len())
        .position(|w| w == placeholder)
    {
        let start = at + found;
        out[start..start + live.len()].copy_from_slice(live);
        at = start + live.len();
    }
    out
}
