//! INIT, UNLOCK and CHANGE_PASSPHRASE: the request checks; the lock state (`lock_state`)
//! does the rest — single flight, the wrong-passphrase throttle, installing the backend.

use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use crate::storage::{DEFAULT_WORK_FACTOR, MAX_UNLOCK_WORK_FACTOR, MIN_WORK_FACTOR};
use avp_protocol::{ErrorCode, Passphrase, Response};

/// INIT: create the vault and leave it unlocked.
pub fn init(state: &AgentState, passphrase: &Passphrase, work_factor: Option<u8>) -> Outcome {
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
    state.lock_state.init(passphrase, work_factor)?;
    Ok(Response::Initialized)
}

/// UNLOCK: one scrypt, then the records into locked memory; on an open vault, the
/// passphrase is still checked (and throttled).
pub fn unlock(state: &AgentState, passphrase: &Passphrase) -> Outcome {
    state.lock_state.unlock(passphrase)?;
    Ok(Response::Unlocked)
}

/// CHANGE_PASSPHRASE: re-wrap the vault identity; the records are untouched.
pub fn change(state: &AgentState, old: &Passphrase, new: &Passphrase) -> Outcome {
    if new.is_empty() {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "the new passphrase must not be empty",
        ));
    }
    state.lock_state.change(old, new)?;
    Ok(Response::PassphraseChanged)
}
