//! The state every connection shares: the lock state (key store, open backend, sessions,
//! timers, unlock throttle), the frame-memory budget, the audit log and the tunables.

use crate::audit::Audit;
use crate::lock_state::{LockSettings, LockState};
use crate::prompt::{PromptSettings, UnlockPrompt};
use crate::storage::KeyStore;
use crate::sync::Budget;
use avp_protocol::Limits;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of frame memory one unit of [`AgentState::frame_budget`] stands for.
pub const BUDGET_UNIT: usize = 4096;

/// Tunables of a running agent.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Idle lock period (zero: never).
    pub idle_lock: Duration,
    /// Maximum unlock lifetime (zero: never).
    pub max_unlock: Duration,
    /// Limits enforced and reported.
    pub limits: Limits,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// A connection silent for this long between requests is closed.
    pub connection_idle_timeout: Duration,
    /// A frame that has started must arrive whole within this time (slow-loris bound).
    pub frame_timeout: Duration,
    /// Most sessions remembered.
    pub max_sessions: usize,
    /// Most bytes of request frames being read at once, across all connections.
    pub frame_budget_bytes: usize,
    /// Delay attempts after wrong passphrases (off only for in-process fuzzing, where
    /// waiting would be all the fuzzer does).
    pub passphrase_backoff: bool,
    /// The pinentry for callers that wait for an unlock (`--pinentry`).
    pub prompt: PromptSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            idle_lock: Duration::from_secs(15 * 60),
            max_unlock: Duration::from_secs(12 * 3600),
            limits: Limits::AVP,
            max_connections: 256,
            connection_idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(10),
            max_sessions: crate::session::DEFAULT_CAPACITY,
            frame_budget_bytes: 64 << 20,
            passphrase_backoff: true,
            prompt: PromptSettings::default(),
        }
    }
}

/// Everything the connections share.
#[derive(Debug)]
pub struct AgentState {
    /// The vault's lock state: the only way to unlock, lock or reach the open backend.
    /// Shared with the pinentry's thread, which unlocks through it.
    pub lock_state: Arc<LockState>,
    /// Unlocking through the pinentry, one dialog at a time.
    pub prompt: UnlockPrompt,
    /// Frame memory budget shared by all connections, in [`BUDGET_UNIT`]s.
    pub frame_budget: Budget,
    /// The audit log, if one is open.
    pub audit: Option<Audit>,
    /// Tunables.
    pub settings: Settings,
    /// The agent's own uid: the only uid allowed to connect.
    pub uid: u32,
}

impl AgentState {
    /// A locked agent over `key_store`.
    pub fn new(key_store: Box<dyn KeyStore>, audit: Option<Audit>, settings: Settings) -> Self {
        let lock_settings = LockSettings {
            idle_lock: settings.idle_lock,
            max_unlock: settings.max_unlock,
            max_sessions: settings.max_sessions,
            limits: settings.limits,
            passphrase_backoff: settings.passphrase_backoff,
        };
        Self {
            lock_state: Arc::new(LockState::new(key_store, lock_settings)),
            prompt: UnlockPrompt::new(settings.prompt.clone()),
            frame_budget: Budget::new(settings.frame_budget_bytes / BUDGET_UNIT),
            audit,
            settings,
            uid: nix::unistd::getuid().as_raw(),
        }
    }
}
