//! Unlocking through the pinentry for callers that asked to wait (`Authenticate` with
//! `wait_for_unlock`, PROTOCOL.md §9.1). At most one dialog at a time, run by a thread of
//! its own, never by a connection thread: every waiting request joins the dialog under way
//! and is answered when it ends — a hundred waiters cost one pinentry. Each waiter waits
//! at most the dialog's deadline (`--pinentry-timeout`, 60 s) plus a grace, whatever the
//! pinentry does. A dialog that ends without unlocking (cancelled, timed out, died, three
//! wrong passphrases) starts a cooldown (`--pinentry-cooldown`, 30 s) during which waiters
//! get `VAULT_LOCKED` at once instead of a new dialog: a cancel is not re-opened by the
//! next request. Wrong passphrases are re-asked (with `SETERROR`) up to three times in one
//! dialog, through `LockState::unlock`, so the usual throttle and single flight apply. A
//! vault unlocked some other way meanwhile (`avp unlock` in a terminal) answers the waiters
//! at once and dismisses the dialog: its window closes, and no cooldown follows.

use crate::audit::Peer;
use crate::error::Failure;
use crate::lock_state::LockState;
use crate::pinentry::{Dialog, DialogError, PinentryCommand};
use crate::sync::guard;
use avp_protocol::{ErrorCode, Passphrase, VaultState};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Passphrases asked per dialog, like sudo and ssh-add.
pub const TRIES: u32 = 3;

/// How long past the dialog's deadline a waiter still waits for its thread to report (it
/// kills the pinentry and checks one last passphrase at most).
const REPORT_GRACE: Duration = Duration::from_secs(5);

/// `--pinentry`, `--pinentry-timeout`, `--pinentry-cooldown`, resolved.
#[derive(Debug, Clone)]
pub struct PromptSettings {
    /// The pinentry; `None`: waiting requests get `VAULT_LOCKED` at once.
    pub command: Option<PinentryCommand>,
    /// The longest a dialog (and so a waiting request) lasts.
    pub timeout: Duration,
    /// No new dialog this long after one that did not unlock.
    pub cooldown: Duration,
}

impl Default for PromptSettings {
    fn default() -> Self {
        Self {
            command: None,
            timeout: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The dialogs started and finished, and the cooldown.
#[derive(Debug, Default)]
struct Flights {
    started: u64,
    finished: u64,
    cooldown_until: Option<Instant>,
    /// The write end of the running dialog's dismissal pipe: closing it ends the dialog.
    dismiss: Option<OwnedFd>,
}

#[derive(Debug, Default)]
struct Shared {
    flights: Mutex<Flights>,
    ended: Condvar,
}

/// The single-flight pinentry unlock.
#[derive(Debug)]
pub struct UnlockPrompt {
    settings: PromptSettings,
    shared: Arc<Shared>,
}

fn locked(message: &'static str) -> Failure {
    Failure::new(ErrorCode::VaultLocked, message)
}

impl UnlockPrompt {
    /// A prompt with no dialog yet.
    pub fn new(settings: PromptSettings) -> Self {
        Self {
            settings,
            shared: Arc::default(),
        }
    }

    /// Returns once the vault is open, starting a dialog (or joining the one under way) if
    /// it is locked; `VAULT_LOCKED` when there is no pinentry, during the cooldown, or when
    /// the dialog ends without unlocking.
    pub fn wait_for_unlock(&self, lock_state: &Arc<LockState>, peer: &Peer) -> Result<(), Failure> {
        match lock_state.vault_state() {
            VaultState::Unlocked => return Ok(()),
            VaultState::Uninitialized => return Err(Failure::not_initialized()),
            VaultState::Locked => {}
        }
        let Some(command) = &self.settings.command else {
            return Err(locked(
                "the vault is locked and this agent has no pinentry to ask with: run \
                 `avp unlock`, or start avp-agent with --pinentry",
            ));
        };
        let mut flights = guard(&self.shared.flights);
        let mine = if flights.started > flights.finished {
            flights.started
        } else {
            if flights
                .cooldown_until
                .is_some_and(|until| Instant::now() < until)
            {
                return Err(locked(
                    "the vault is locked and its passphrase prompt was just dismissed: run \
                     `avp unlock`, or try again in a little while",
                ));
            }
            // Unlocked meanwhile, by a dialog that ended just now or by `avp unlock`.
            if lock_state.is_unlocked() {
                return Ok(());
            }
            flights.started += 1;
            let flight = flights.started;
            let (dismissed, dismiss) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|_| {
                    flights.finished = flight;
                    locked("the vault is locked and the agent cannot start its pinentry: run `avp unlock`")
                })?;
            flights.dismiss = Some(dismiss);
            self.launch(
                command.clone(),
                Arc::clone(lock_state),
                peer.clone(),
                dismissed,
            )
            .inspect_err(|_| {
                flights.finished = flight;
                flights.dismiss = None;
            })?;
            flight
        };
        let until = Instant::now() + self.settings.timeout + REPORT_GRACE;
        // Also woken by `vault_unlocked`: an `avp unlock` from a terminal meanwhile answers
        // the waiters at once (and dismisses the dialog).
        while flights.finished < mine && !lock_state.is_unlocked() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            flights = self
                .shared
                .ended
                .wait_timeout(flights, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(flights);
        lock_state.backend().map(drop).map_err(|_| {
            locked("the vault is still locked: the passphrase prompt was cancelled or timed out; run `avp unlock`")
        })
    }

    /// The vault was unlocked (by anyone): wakes the waiters and dismisses a dialog still
    /// up. The lifecycle calls it on every `LockEvent::Unlocked`.
    pub fn vault_unlocked(&self) {
        // Under the lock, so a waiter between its check and its wait cannot miss it.
        let mut flights = guard(&self.shared.flights);
        drop(flights.dismiss.take());
        self.shared.ended.notify_all();
    }

    fn launch(
        &self,
        command: PinentryCommand,
        lock_state: Arc<LockState>,
        peer: Peer,
        dismissed: OwnedFd,
    ) -> Result<(), Failure> {
        let shared = Arc::clone(&self.shared);
        let timeout = self.settings.timeout;
        let cooldown = self.settings.cooldown;
        std::thread::Builder::new()
            .name("avp-pinentry".into())
            .spawn(move || {
                let deadline = Instant::now() + timeout;
                let outcome = converse(&command, &lock_state, &peer, deadline, dismissed);
                let mut flights = guard(&shared.flights);
                flights.dismiss = None;
                match &outcome {
                    Ok(()) => {
                        flights.cooldown_until = None;
                        tracing::info!("vault unlocked through the pinentry");
                    }
                    Err(NotUnlocked::Dialog(DialogError::Dismissed)) => {
                        flights.cooldown_until = None;
                        tracing::info!(
                            "the pinentry was dismissed: the vault was unlocked meanwhile"
                        );
                    }
                    Err(err) => {
                        flights.cooldown_until = Some(Instant::now() + cooldown);
                        tracing::warn!(%err, "the pinentry did not unlock the vault");
                    }
                }
                flights.finished = flights.started;
                shared.ended.notify_all();
            })
            .map(drop)
            .map_err(|_| {
                locked(
                    "the vault is locked and the agent cannot start its pinentry: run `avp unlock`",
                )
            })
    }
}

/// Why a dialog did not unlock, for the log.
#[derive(Debug, thiserror::Error)]
enum NotUnlocked {
    #[error(transparent)]
    Dialog(#[from] DialogError),
    #[error("{TRIES} wrong passphrases")]
    Wrong,
    #[error("{0}")]
    Refused(String),
}

/// One dialog: up to [`TRIES`] passphrases, each checked by the lock state.
fn converse(
    command: &PinentryCommand,
    lock_state: &LockState,
    peer: &Peer,
    deadline: Instant,
    dismissed: OwnedFd,
) -> Result<(), NotUnlocked> {
    let mut dialog = Dialog::start(command, deadline, dismissed)?;
    dialog.command("SETTITLE", "avp: unlock the vault")?;
    dialog.command("SETDESC", &description(peer))?;
    dialog.command("SETPROMPT", "Passphrase:")?;
    for attempt in 1..=TRIES {
        if attempt > 1 {
            let error = format!("Wrong passphrase (try {attempt} of {TRIES})");
            dialog.command("SETERROR", &error)?;
        }
        let pin = dialog.get_pin()?;
        let Ok(text) = std::str::from_utf8(&pin) else {
            continue;
        };
        let passphrase = Passphrase::new(text);
        drop(pin);
        match lock_state.unlock(&passphrase) {
            Ok(()) => {
                dialog.close();
                return Ok(());
            }
            Err(failure) if failure.code == ErrorCode::AuthenticationFailed => {}
            Err(failure) => return Err(NotUnlocked::Refused(failure.message.into_owned())),
        }
    }
    dialog.close();
    Err(NotUnlocked::Wrong)
}

/// Who is asking, as the audit log names them.
fn description(peer: &Peer) -> String {
    let who = match (&peer.exe, peer.pid) {
        (Some(exe), Some(pid)) => format!("{} (pid {pid})", exe.display()),
        (None, Some(pid)) => format!("process {pid}"),
        _ => "a program".to_owned(),
    };
    format!(
        "{who} wants to use your avp vault, which is locked.\nEnter the vault passphrase to unlock it."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_the_program() {
        let peer = Peer {
            uid: 1000,
            pid: Some(42),
            exe: Some("/usr/bin/code".into()),
        };
        assert!(description(&peer).starts_with("/usr/bin/code (pid 42) wants"));
        let unknown = Peer {
            uid: 1000,
            pid: None,
            exe: None,
        };
        assert!(description(&unknown).starts_with("a program wants"));
    }
}
