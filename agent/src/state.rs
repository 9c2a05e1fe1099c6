//! The state every connection shares: the key store, the open backend (present only while
//! unlocked), the session table, the lock timers, the unlock throttle and the audit log.
//!
//! Locking is dropping the backend: the `Arc` is taken out of its slot, so no new operation
//! can reach it, and the plaintext is wiped the moment the last in-flight operation ends.

use crate::audit::Audit;
use crate::error::Failure;
use crate::session::SessionTable;
use crate::storage::{Backend, KeyStore};
use crate::sync::{Budget, FairGate, guard};
use crate::timer::{BootInstant, LockReason, LockTimers};
use avp_protocol::{Limits, VaultState};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::Notify;

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
        }
    }
}

/// Consecutive wrong passphrases and when the next attempt may start.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: u32,
    not_before: Option<Instant>,
}

/// The delay imposed after the `n`th consecutive wrong passphrase: 100 ms doubling each
/// time, at most 10 s. Ten wrong passphrases in a row cost at least
/// 0.1+0.2+0.4+0.8+1.6+3.2+6.4+10+10 = 32.7 s.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let millis = 100u64.saturating_mul(1u64 << (failures - 1).min(16));
    Duration::from_millis(millis).min(MAX_BACKOFF)
}

/// The cap on the wrong-passphrase delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Throttle {
    /// When the next attempt may start, if it must wait.
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// A wrong passphrase: the next attempt waits longer.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = Some(Instant::now() + backoff(self.failures));
    }

    /// A right passphrase: no more delay.
    pub fn succeeded(&mut self) {
        *self = Self::default();
    }
}

/// Everything the connections share.
pub struct AgentState {
    /// Where the vault lives.
    pub key_store: Box<dyn KeyStore>,
    backend: RwLock<Option<Arc<dyn Backend>>>,
    /// The backend of the previous unlocked period, until its in-flight operations end: a
    /// new unlock waits for it so two backends never write one vault.
    previous: Mutex<Option<Weak<dyn Backend>>>,
    /// Frame memory budget shared by all connections, in `connection::BUDGET_UNIT`s.
    pub frame_budget: Budget,
    sessions: Mutex<SessionTable>,
    timers: Mutex<LockTimers>,
    /// Init, unlock and passphrase changes run one at a time (each is a scrypt).
    pub unlock_gate: FairGate,
    /// Wrong-passphrase backoff.
    pub throttle: Mutex<Throttle>,
    /// The audit log, if one is open.
    pub audit: Option<Audit>,
    /// Tunables.
    pub settings: Settings,
    /// Wakes the timer task when the deadlines change (unlock, lock).
    pub timers_changed: Notify,
    /// The agent's own uid: the only uid allowed to connect.
    pub uid: u32,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState")
            .field("vault", &self.key_store.location())
            .field("unlocked", &self.is_unlocked())
            .finish_non_exhaustive()
    }
}

impl AgentState {
    /// A locked agent over `key_store`.
    pub fn new(key_store: Box<dyn KeyStore>, audit: Option<Audit>, settings: Settings) -> Self {
        Self {
            key_store,
            backend: RwLock::new(None),
            previous: Mutex::new(None),
            frame_budget: Budget::new(settings.frame_budget_bytes / crate::connection::BUDGET_UNIT),
            sessions: Mutex::new(SessionTable::new(settings.max_sessions, settings.limits)),
            timers: Mutex::new(LockTimers::new(settings.idle_lock, settings.max_unlock)),
            unlock_gate: FairGate::default(),
            throttle: Mutex::new(Throttle::default()),
            audit,
            settings,
            timers_changed: Notify::new(),
            uid: nix::unistd::getuid().as_raw(),
        }
    }

    /// True while the vault is open.
    pub fn is_unlocked(&self) -> bool {
        self.backend
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Uninitialized, locked or unlocked.
    pub fn vault_state(&self) -> VaultState {
        if self.is_unlocked() {
            VaultState::Unlocked
        } else if self.key_store.is_initialized().unwrap_or(true) {
            VaultState::Locked
        } else {
            VaultState::Uninitialized
        }
    }

    /// The open backend, or why there is none.
    pub fn backend(&self) -> Result<Arc<dyn Backend>, Failure> {
        let slot = self
            .backend
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            Some(backend) => Ok(Arc::clone(backend)),
            None => Err(self.closed_failure()),
        }
    }

    /// `VAULT_LOCKED`, or `VAULT_NOT_INITIALIZED` when there is no vault at all.
    pub fn closed_failure(&self) -> Failure {
        match self.key_store.is_initialized() {
            Ok(false) => Failure::not_initialized(),
            _ => Failure::locked(),
        }
    }

    /// Installs a freshly unlocked backend and starts the timers.
    pub fn install(&self, backend: Box<dyn Backend>) {
        let mut slot = self
            .backend
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(Arc::from(backend));
        guard(&self.timers).start(BootInstant::now());
        drop(slot);
        self.timers_changed.notify_one();
        tracing::info!(vault = %self.key_store.location(), "vault unlocked");
        crate::daemon::notify_status("unlocked");
    }

    /// Locks: drops the backend (wiping its plaintext once in-flight operations finish),
    /// ends every session, stops the timers. Returns false if it was already locked.
    pub fn lock(&self, why: &str) -> bool {
        let taken = self
            .backend
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        guard(&self.sessions).terminate_all();
        guard(&self.timers).stop();
        self.timers_changed.notify_one();
        let was_unlocked = taken.is_some();
        if let Some(backend) = taken {
            *guard(&self.previous) = Some(Arc::downgrade(&backend));
        }
        if was_unlocked {
            tracing::info!(reason = why, "vault locked");
            crate::daemon::notify_status("locked");
        }
        was_unlocked
    }

    /// Waits until the backend of the previous unlocked period is gone (its in-flight
    /// operations have ended and its plaintext is wiped).
    pub fn previous_backend_gone(&self) {
        loop {
            let alive = guard(&self.previous)
                .as_ref()
                .is_some_and(|weak| weak.strong_count() > 0);
            if !alive {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A secret operation happened: restart the idle period.
    pub fn touch(&self) {
        guard(&self.timers).touch(BootInstant::now());
    }

    /// The session table.
    pub fn sessions(&self) -> MutexGuard<'_, SessionTable> {
        guard(&self.sessions)
    }

    /// The lock timers.
    pub fn timers(&self) -> MutexGuard<'_, LockTimers> {
        guard(&self.timers)
    }

    /// Locks if a timer has run out; returns why, if it did.
    pub fn lock_if_due(&self) -> Option<LockReason> {
        let reason = self.timers().due(BootInstant::now())?;
        self.lock(reason.as_str());
        Some(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_ten_seconds() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_millis(6_400));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        let ten: Duration = (1..10).map(backoff).sum();
        assert_eq!(ten, Duration::from_millis(32_700));
    }
}
