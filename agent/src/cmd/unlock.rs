//! UNLOCK: one scrypt, then the records into locked memory.
//!
//! Single-flight: concurrent unlocks queue on the gate and the later ones find the vault
//! already open. Wrong passphrases are throttled: after the n-th consecutive failure, the
//! next attempt may only start after `state::backoff(n)` (at most 10 s). The wait happens
//! before the gate is taken, so a queue of wrong guesses cannot hold a right one for ever.

use super::blocking;
use crate::backend::BackendError;
use crate::error::Outcome;
use crate::state::{AgentState, guard};
use avp_protocol::{Passphrase, Response};

/// Waits out the wrong-passphrase backoff, if any.
pub async fn wait_for_turn(state: &AgentState) {
    loop {
        let not_before = guard(&state.throttle).not_before();
        match not_before {
            Some(when) if when > tokio::time::Instant::now() => {
                tokio::time::sleep_until(when).await
            }
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
            throttle.failed();
            tracing::warn!("wrong passphrase");
        }
        Err(_) => {}
    }
}

pub async fn run(state: &AgentState, passphrase: Passphrase) -> Outcome {
    if state.is_unlocked() {
        return Ok(Response::Unlocked);
    }
    wait_for_turn(state).await;
    let _single_flight = state.unlock_gate.lock().await;
    if state.is_unlocked() {
        return Ok(Response::Unlocked);
    }
    state.previous_backend_gone().await;
    let result = blocking(|| state.key_store.unlock(&passphrase));
    note_attempt(state, &result);
    state.install(result?);
    Ok(Response::Unlocked)
}
