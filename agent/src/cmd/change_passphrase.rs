//! CHANGE_PASSPHRASE: re-wrap the vault identity; the records are untouched.

use super::blocking;
use super::unlock::{note_attempt, wait_for_turn};
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use avp_protocol::{ErrorCode, Passphrase, Response};

pub async fn run(state: &AgentState, old: Passphrase, new: Passphrase) -> Outcome {
    if new.is_empty() {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "the new passphrase must not be empty",
        ));
    }
    wait_for_turn(state).await;
    let _single_flight = state.unlock_gate.lock().await;
    let result = blocking(|| state.key_store.change_passphrase(&old, &new));
    note_attempt(state, &result);
    result?;
    tracing::info!("vault passphrase changed");
    Ok(Response::PassphraseChanged)
}
