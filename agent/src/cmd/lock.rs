//! LOCK: wipe every plaintext and end every session. Locking a locked vault is not an error.

use crate::state::AgentState;
use avp_protocol::Response;

pub fn run(state: &AgentState) -> Response {
    state.lock("requested");
    Response::Locked
}
