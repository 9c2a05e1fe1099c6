//! AUTHENTICATE: open a session bound to a workspace and to the caller's uid.

use crate::audit::Peer;
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use crate::timer::BootInstant;
use avp_protocol::{ErrorCode, Response, Timestamp, WorkspaceId};

/// Longest `agent_id` accepted, in bytes.
pub const MAX_AGENT_ID_LEN: usize = 255;

pub fn run(
    state: &AgentState,
    peer: &Peer,
    workspace: WorkspaceId,
    agent_id: &str,
    ttl_seconds: Option<u64>,
) -> Outcome {
    if agent_id.len() > MAX_AGENT_ID_LEN {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "agent_id is at most 255 bytes",
        ));
    }
    // Sessions only exist while the vault is open: locking ends them all.
    state.lock_state.backend()?;
    let info = state
        .lock_state
        .sessions()
        .open(
            workspace,
            peer.uid,
            ttl_seconds,
            BootInstant::now(),
            Timestamp::now(),
        )
        .map_err(|_| {
            Failure::new(
                ErrorCode::BackendError,
                "the operating system's random generator failed",
            )
        })?;
    // No workspace id (nor any name) in a log event: the formatter keeps the last line it
    // wrote in a buffer of the thread's own, which lives as long as the connection thread
    // (threads are kept for the next clients), outside locked memory. The audit log names it.
    tracing::debug!(ttl = info.ttl_seconds, "session opened");
    Ok(Response::Authenticated(info))
}
