//! CHANGE_PASSPHRASE: re-wrap the vault identity; the records are untouched.

use super::unlock::{note_attempt, take_turn};
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use avp_protocol::{ErrorCode, Passphrase, Response};

pub fn run(state: &AgentState, old: Passphrase, new: Passphrase) -> Outcome {
    if new.is_empty() {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "the new passphrase must not be empty",
        ));
    }
    // The old passphrase is checked like an unlock's: throttled the same way.
    let _single_flight = take_turn(state);
    let result = state.key_store.change_passphrase(&old, &new);
    note_attempt(state, &result);
    result?;
    tracing::info!("vault passphrase changed");
    Ok(Response::PassphraseChanged)
}
