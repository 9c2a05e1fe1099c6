//! TERMINATE: end a session before its expiry.

use super::Scope;
use crate::audit::Peer;
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use crate::timer::BootInstant;
use avp_protocol::{Response, SessionId};

pub fn run(state: &AgentState, peer: &Peer, session: &SessionId, scope: &mut Scope) -> Outcome {
    let mut sessions = state.lock_state.sessions();
    let now = BootInstant::now();
    if let Ok(grant) = sessions.check(session, peer.uid, now) {
        scope.workspace = Some(grant.workspace);
    }
    sessions
        .terminate(session, peer.uid, now)
        .map_err(|e| Failure::new(e.code(), e.message()))?;
    Ok(Response::Terminated)
}
