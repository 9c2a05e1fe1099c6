//! UNLOCK: one scrypt, then the records into locked memory.
//!
//! Single-flight: concurrent unlocks queue on the gate and the later ones find the vault
//! already open. Wrong passphrases are throttled: after the n-th consecutive failure, the
//! next attempt may only start after `state::backoff(n)` (at most 10 s).
//!
//! The wait happens *while holding* the gate, so the backoff spaces every attempt, however
//! many connections send them: waiting before taking the gate let all the guesses queued
//! during one backoff period through back to back (the reliability suite measured five
//! concurrent wrong guesses answered in milliseconds instead of 1.5 s). The gate is a fair
//! (FIFO) lock, so a right passphrase is not starved: it waits for the attempts queued
//! before it — one, when a single client guesses in a loop — plus its own backoff.

use crate::backend::BackendError;
use crate::error::Outcome;
use crate::state::{AgentState, guard};
use crate::sync::GateGuard;
use avp_protocol::{Passphrase, Response};
use std::time::Instant;

/// Takes the single-flight gate, in arrival order, then waits out the wrong-passphrase
/// backoff with it held. `skip_if_unlocked`: return at once (without the wait) if the vault
/// turned out to be open meanwhile — `None` then.
pub fn take_turn(state: &AgentState, skip_if_unlocked: bool) -> Option<GateGuard<'_>> {
    let gate = state.unlock_gate.lock();
    if skip_if_unlocked && state.is_unlocked() {
        return None;
    }
    wait_for_turn(state);
    Some(gate)
}

/// Waits out the wrong-passphrase backoff, if any.
fn wait_for_turn(state: &AgentState) {
    loop {
        let not_before = guard(&state.throttle).not_before();
        match not_before.and_then(|when| when.checked_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => std::thread::sleep(wait),
            _ => return,
        }
    }
}

/// Records the outcome of a passphrase check in the throttle.
pub fn note_attempt<T>(state: &AgentState, result: &Result<T, BackendError>) {
    let mut throttle = guard(&state.throttle);
    match result {
        Ok(_) => throttle.succeeded(),
        Err(BackendError::AuthenticationFailed(_)) => {
            if state.settings.passphrase_backoff {
                throttle.failed();
            }
            tracing::warn!("wrong passphrase");
        }
        Err(_) => {}
    }
}

pub fn run(state: &AgentState, passphrase: Passphrase) -> Outcome {
    if state.is_unlocked() {
        return Ok(Response::Unlocked);
    }
    let Some(_single_flight) = take_turn(state, true) else {
        return Ok(Response::Unlocked);
    };
    state.previous_backend_gone();
    let result = state.key_store.unlock(&passphrase);
    note_attempt(state, &result);
    state.install(result?);
    Ok(Response::Unlocked)
}
