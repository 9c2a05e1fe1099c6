//! The one owner of the lock state: the unlocked/locked slot, the single-flight gate, the
//! wrong-passphrase throttle, the session table (locking ends every session) and the lock
//! timers, behind [`LockState`]'s `init / unlock / change / lock`. It reports every
//! transition as a [`LockEvent`] to a sink the lifecycle installs (systemd's status line);
//! it knows nothing of who listens.
//!
//! Locking is dropping the backend: the `Arc` is taken out of its slot, so no new operation
//! can reach it, and the plaintext is wiped the moment the last in-flight operation ends.
//! A new unlock (or init) waits for that moment, so two backends never write one vault:
//! every open backend carries an [`AliveToken`] whose drop wakes the waiter (no polling).
//!
//! Single-flight: init, unlock and passphrase changes (each a scrypt) queue on a fair
//! (FIFO) gate. An unlock that finds the vault already open still checks its passphrase
//! (one scrypt, no records read), so a wrong one is refused and throttled exactly as on a
//! locked vault. The wrong-passphrase backoff is waited out *while holding* the gate, so it
//! spaces every attempt, however many connections send them: waiting before taking the gate
//! let all the guesses queued during one backoff period through back to back (the
//! reliability suite measured five concurrent wrong guesses answered in milliseconds instead
//! of 1.5 s). The gate being FIFO, a right passphrase is not starved: it waits for the
//! attempts queued before it — one, when a single client guesses in a loop — plus its own
//! backoff.

use crate::error::Failure;
use crate::session::SessionTable;
use crate::storage::{Backend, BackendError, KeyStore};
use crate::sync::{FairGate, GateGuard, guard};
use crate::throttle::Throttle;
use crate::timer::{BootInstant, LockTimers};
use avp_protocol::{Limits, LockReason, Passphrase, Timestamp, VaultState};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// A transition of the lock state, for whoever reports it (systemd's status line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// The vault was unlocked (or created, which leaves it unlocked).
    Unlocked,
    /// The vault was locked, for this reason.
    Locked(LockReason),
}

/// What [`LockState::new`] needs to know.
#[derive(Debug, Clone, Copy)]
pub struct LockSettings {
    /// Idle lock period (zero: never).
    pub idle_lock: Duration,
    /// Maximum unlock lifetime (zero: never).
    pub max_unlock: Duration,
    /// Most sessions remembered.
    pub max_sessions: usize,
    /// Session TTL bounds.
    pub limits: Limits,
    /// Delay attempts after wrong passphrases.
    pub passphrase_backoff: bool,
}

/// The open backends not yet dropped (the one installed, and a locked one still used by an
/// in-flight operation).
#[derive(Debug, Default)]
struct Alive {
    count: Mutex<usize>,
    gone: Condvar,
}

/// Counts one open backend in [`Alive`] while it exists.
#[derive(Debug)]
struct AliveToken(Arc<Alive>);

impl Drop for AliveToken {
    fn drop(&mut self) {
        *guard(&self.0.count) -= 1;
        self.0.gone.notify_all();
    }
}

/// An unlocked backend as the lock state hands it out. Derefs to the backend.
pub struct OpenBackend {
    backend: Box<dyn Backend>,
    // Declared after `backend`, so it drops (and wakes a waiting unlock) only once the
    // backend, and with it the plaintext, is gone.
    _alive: AliveToken,
}

impl std::ops::Deref for OpenBackend {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl std::fmt::Debug for OpenBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OpenBackend")
            .field(&self.backend.name())
            .finish()
    }
}

/// The lock timers and whether their thread should stop.
#[derive(Debug)]
struct Timers {
    clock: LockTimers,
    stopped: bool,
}

type Sink = Box<dyn Fn(LockEvent) + Send + Sync>;

/// The lock state machine: uninitialized → unlocked ⇄ locked.
pub struct LockState {
    key_store: Box<dyn KeyStore>,
    slot: RwLock<Option<Arc<OpenBackend>>>,
    alive: Arc<Alive>,
    gate: FairGate,
    throttle: Mutex<Throttle>,
    passphrase_backoff: bool,
    sessions: Mutex<SessionTable>,
    timers: Mutex<Timers>,
    /// Wakes the timer thread when the deadlines change (unlock, lock) or it must stop.
    timers_changed: Condvar,
    sink: OnceLock<Sink>,
    /// Why and when the vault last went from unlocked to locked (STATUS).
    last_lock: Mutex<Option<(LockReason, Timestamp)>>,
}

impl std::fmt::Debug for LockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockState")
            .field("vault", &self.key_store.location())
            .field("unlocked", &self.is_unlocked())
            .finish_non_exhaustive()
    }
}

impl LockState {
    /// A locked state over `key_store`.
    pub fn new(key_store: Box<dyn KeyStore>, settings: LockSettings) -> Self {
        Self {
            key_store,
            slot: RwLock::new(None),
            alive: Arc::default(),
            gate: FairGate::default(),
            throttle: Mutex::default(),
            passphrase_backoff: settings.passphrase_backoff,
            sessions: Mutex::new(SessionTable::new(settings.max_sessions, settings.limits)),
            timers: Mutex::new(Timers {
                clock: LockTimers::new(settings.idle_lock, settings.max_unlock),
                stopped: false,
            }),
            timers_changed: Condvar::new(),
            sink: OnceLock::new(),
            last_lock: Mutex::new(None),
        }
    }

    /// Sends every later [`LockEvent`] to `sink` (set once; later calls are ignored).
    pub fn on_event(&self, sink: impl Fn(LockEvent) + Send + Sync + 'static) {
        let _ = self.sink.set(Box::new(sink));
    }

    fn emit(&self, event: LockEvent) {
        if let Some(sink) = self.sink.get() {
            sink(event);
        }
    }

    /// Where the vault lives.
    pub fn key_store(&self) -> &dyn KeyStore {
        &*self.key_store
    }

    /// True while the vault is open.
    pub fn is_unlocked(&self) -> bool {
        self.slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
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
    pub fn backend(&self) -> Result<Arc<OpenBackend>, Failure> {
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(backend) => Ok(Arc::clone(backend)),
            None => Err(self.closed_failure()),
        }
    }

    /// `VAULT_LOCKED`, or `VAULT_NOT_INITIALIZED` when there is no vault at all.
    fn closed_failure(&self) -> Failure {
        match self.key_store.is_initialized() {
            Ok(false) => Failure::not_initialized(),
            _ => Failure::locked(),
        }
    }

    /// Creates the vault and leaves it unlocked.
    pub fn init(&self, passphrase: &Passphrase, work_factor: u8) -> Result<(), Failure> {
        let _single_flight = self.gate.lock();
        self.wait_for_retired_backends();
        let backend = self.key_store.init(passphrase, work_factor)?;
        self.install(backend);
        Ok(())
    }

    /// Opens the vault; on an open vault, only checks the passphrase. Throttled.
    pub fn unlock(&self, passphrase: &Passphrase) -> Result<(), Failure> {
        let _single_flight = self.take_turn();
        if self.is_unlocked() {
            // Answering `Unlocked` unchecked would tell a guesser nothing, but it tells the
            // user a wrong passphrase is right; and it must cost a guesser what a locked
            // unlock costs.
            let result = self.key_store.verify(passphrase);
            self.note_attempt(&result);
            return Ok(result?);
        }
        self.wait_for_retired_backends();
        let result = self.key_store.unlock(passphrase);
        self.note_attempt(&result);
        self.install(result?);
        Ok(())
    }

    /// Re-wraps the vault identity under `new`. The old passphrase is checked like an
    /// unlock's: throttled the same way.
    pub fn change(&self, old: &Passphrase, new: &Passphrase) -> Result<(), Failure> {
        let _single_flight = self.take_turn();
        let result = self.key_store.change_passphrase(old, new);
        self.note_attempt(&result);
        result?;
        tracing::info!("vault passphrase changed");
        Ok(())
    }

    /// Locks: drops the backend (wiping its plaintext once in-flight operations finish),
    /// ends every session, stops the timers, and remembers `why` for STATUS. Returns false
    /// if it was already locked (the last reason then stays the one that locked it).
    pub fn lock(&self, why: LockReason) -> bool {
        // Held while the slot empties, so a STATUS that sees the vault locked also sees why
        // (it reads the reason after the state, and waits here for it).
        let mut last_lock = guard(&self.last_lock);
        // The slot's guard is released at the end of this statement, before the backend
        // can drop (its token takes `alive`, which a waiting unlock holds).
        let taken = self
            .slot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if taken.is_some() {
            *last_lock = Some((why, Timestamp::now()));
        }
        drop(last_lock);
        guard(&self.sessions).terminate_all();
        guard(&self.timers).clock.stop();
        self.timers_changed.notify_all();
        let was_unlocked = taken.is_some();
        drop(taken);
        if was_unlocked {
            tracing::info!(reason = why.as_str(), "vault locked");
            self.emit(LockEvent::Locked(why));
        }
        was_unlocked
    }

    /// Why and when the vault last went from unlocked to locked, if it has.
    pub fn last_lock(&self) -> Option<(LockReason, Timestamp)> {
        *guard(&self.last_lock)
    }

    /// A secret operation happened: restart the idle period.
    pub fn touch(&self) {
        guard(&self.timers).clock.touch(BootInstant::now());
    }

    /// The session table.
    pub fn sessions(&self) -> MutexGuard<'_, SessionTable> {
        guard(&self.sessions)
    }

    /// The lock timers as they are now.
    pub fn timers(&self) -> LockTimers {
        guard(&self.timers).clock
    }

    /// Runs the lock timers on the calling thread until [`LockState::stop_timers`]: locks
    /// when the idle or lifetime deadline passes. Wakes at the next deadline, at least every
    /// `timer::MAX_NAP` (a condvar's clock stops during suspend; `CLOCK_BOOTTIME` does not),
    /// and whenever an unlock or lock moves the deadlines.
    pub fn run_timers(&self) {
        let mut timers = guard(&self.timers);
        while !timers.stopped {
            let now = BootInstant::now();
            if let Some(reason) = timers.clock.due(now) {
                drop(timers);
                self.lock(reason);
                tracing::info!(reason = reason.as_str(), "locked by timer");
                timers = guard(&self.timers);
                continue;
            }
            let nap = timers.clock.nap(now);
            timers = self
                .timers_changed
                .wait_timeout(timers, nap)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Makes [`LockState::run_timers`] return.
    pub fn stop_timers(&self) {
        guard(&self.timers).stopped = true;
        self.timers_changed.notify_all();
    }

    /// Takes the single-flight gate, in arrival order, then waits out the wrong-passphrase
    /// backoff with it held.
    fn take_turn(&self) -> GateGuard<'_> {
        let gate = self.gate.lock();
        // The backoff itself is the wait: a sleep for exactly the time left, re-checked in
        // case a failure queued before us extended it.
        while let Some(wait) = guard(&self.throttle).wait(Instant::now()) {
            std::thread::sleep(wait);
        }
        gate
    }

    /// Records the outcome of a passphrase check in the throttle.
    fn note_attempt<T>(&self, result: &Result<T, BackendError>) {
        let mut throttle = guard(&self.throttle);
        match result {
            Ok(_) => throttle.succeeded(),
            Err(BackendError::AuthenticationFailed(_)) => {
                if self.passphrase_backoff {
                    throttle.failed();
                }
                tracing::warn!("wrong passphrase");
            }
            Err(_) => {}
        }
    }

    /// Waits until every backend but the installed one is gone (the in-flight operations of
    /// the previous unlocked period have ended and its plaintext is wiped). Called with the
    /// gate held, so nothing is installed meanwhile.
    fn wait_for_retired_backends(&self) {
        let installed = usize::from(self.is_unlocked());
        let count = guard(&self.alive.count);
        drop(
            self.alive
                .gone
                .wait_while(count, |alive| *alive > installed)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Installs a freshly unlocked backend and starts the timers.
    fn install(&self, backend: Box<dyn Backend>) {
        *guard(&self.alive.count) += 1;
        let open = Arc::new(OpenBackend {
            backend,
            _alive: AliveToken(Arc::clone(&self.alive)),
        });
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(open);
        guard(&self.timers).clock.start(BootInstant::now());
        drop(slot);
        self.timers_changed.notify_all();
        tracing::info!(vault = %self.key_store.location(), "vault unlocked");
        self.emit(LockEvent::Unlocked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{BackendConfig, BackendSettings, open_key_store};
    use std::sync::mpsc::channel;

    fn settings() -> LockSettings {
        LockSettings {
            idle_lock: Duration::ZERO,
            max_unlock: Duration::ZERO,
            max_sessions: 8,
            limits: Limits::AVP,
            passphrase_backoff: true,
        }
    }

    fn on_disk(dir: &std::path::Path) -> LockState {
        let config = BackendConfig::Local {
            dir: dir.join("vault"),
        };
        let key_store = open_key_store(&config, BackendSettings::default()).unwrap();
        LockState::new(key_store, settings())
    }

    #[test]
    fn transitions_are_reported_as_events() {
        let dir = tempfile::tempdir().unwrap();
        let state = on_disk(dir.path());
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        state.on_event(move |event| guard(&tx).send(event).unwrap());
        let passphrase = Passphrase::new("right");
        state.init(&passphrase, 10).unwrap();
        assert!(state.lock(LockReason::Explicit));
        assert!(
            !state.lock(LockReason::Explicit),
            "locking a locked vault reports nothing"
        );
        state.unlock(&passphrase).unwrap();
        let events: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            events,
            [
                LockEvent::Unlocked,
                LockEvent::Locked(LockReason::Explicit),
                LockEvent::Unlocked
            ]
        );
    }

    #[test]
    fn the_last_lock_reason_is_the_one_that_locked_the_vault() {
        let dir = tempfile::tempdir().unwrap();
        let state = on_disk(dir.path());
        assert_eq!(state.last_lock(), None, "never locked yet");
        let passphrase = Passphrase::new("right");
        state.init(&passphrase, 10).unwrap();
        assert!(state.lock(LockReason::Idle));
        assert!(!state.lock(LockReason::Shutdown));
        assert_eq!(
            state.last_lock().map(|(why, _)| why),
            Some(LockReason::Idle)
        );
        state.unlock(&passphrase).unwrap();
        assert!(state.lock(LockReason::Sleep));
        let (why, at) = state.last_lock().unwrap();
        assert_eq!(why, LockReason::Sleep);
        assert!(at.unix() <= Timestamp::now().unix());
    }

    #[test]
    fn an_unlock_waits_for_the_previous_backend_to_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(on_disk(dir.path()));
        let passphrase = Passphrase::new("right");
        state.init(&passphrase, 10).unwrap();
        // An operation still running on the backend of the period that is about to end.
        let in_flight = state.backend().unwrap();
        state.lock(LockReason::Explicit);
        let (done, unlocked) = channel();
        let unlocking = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            unlocking.unlock(&Passphrase::new("right")).unwrap();
            done.send(()).unwrap();
        });
        assert!(
            unlocked.recv_timeout(Duration::from_millis(300)).is_err(),
            "the unlock went ahead while the old backend was still in use"
        );
        drop(in_flight);
        unlocked
            .recv_timeout(Duration::from_secs(30))
            .expect("the unlock proceeds once the old backend is gone");
        thread.join().unwrap();
        assert!(state.is_unlocked());
    }
}
