//! INIT: create the vault and leave it unlocked.

use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use crate::storage::{DEFAULT_WORK_FACTOR, MAX_UNLOCK_WORK_FACTOR, MIN_WORK_FACTOR};
use avp_protocol::{ErrorCode, Passphrase, Response};

pub fn run(state: &AgentState, passphrase: Passphrase, work_factor: Option<u8>) -> Outcome {
    let work_factor = work_factor.unwrap_or(DEFAULT_WORK_FACTOR);
    if !(MIN_WORK_FACTOR..=MAX_UNLOCK_WORK_FACTOR).contains(&work_factor) {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "the work factor must be between 10 and 22",
        ));
    }
    if passphrase.is_empty() {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "the passphrase must not be empty",
        ));
    }
    let _single_flight = state.unlock_gate.lock();
    state.previous_backend_gone();
    let backend = state.key_store.init(&passphrase, work_factor)?;
    state.install(backend);
    Ok(Response::Initialized)
}
