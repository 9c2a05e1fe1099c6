//! UNLOCK: one scrypt, then the records into locked memory.
//!
//! Single-flight: concurrent unlocks queue on the gate. An unlock that finds the vault
//! already open still checks its passphrase (one scrypt, no records read), so a wrong one
//! is refused and throttled exactly as on a locked vault. Wrong passphrases are throttled: after the n-th consecutive failure, the
//! next attempt may only start after `state::backoff(n)` (at most 10 s).
//!
//! The wait happens *while holding* the gate, so the backoff spaces every attempt, however
//! many connections send them: waiting before taking the gate let all the guesses queued
//! during one backoff period through back to back (the reliability suite measured five
//! concurrent wrong guesses answered in milliseconds instead of 1.5 s). The gate is a fair
//! (FIFO) lock, so a right passphrase is not starved: it waits for the attempts queued
//! before it — one, when a single client guesses in a loop — plus its own backoff.

use crate::error::Outcome;
use crate::state::AgentState;
use crate::storage::BackendError;
use crate::sync::GateGuard;
use crate::sync::guard;
use avp_protocol::{Passphrase, Response};
use std::time::Instant;

/// Takes the single-flight gate, in arrival order, then waits out the wrong-passphrase
/// backoff with it held.
pub fn take_turn(state: &AgentState) -> GateGuard<'_> {
    let gate = state.unlock_gate.lock();
    wait_for_turn(state);
    gate
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
    let _single_flight = take_turn(state);
    if state.is_unlocked() {
        // Answering `Unlocked` unchecked would tell a guesser nothing, but it tells the
        // user a wrong passphrase is right; and it must cost a guesser what a locked
        // unlock costs.
        let result = state.key_store.verify(&passphrase);
        note_attempt(state, &result);
        result?;
        return Ok(Response::Unlocked);
    }
    state.previous_backend_gone();
    let result = state.key_store.unlock(&passphrase);
    note_attempt(state, &result);
    state.install(result?);
    Ok(Response::Unlocked)
}
