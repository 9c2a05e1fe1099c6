//! WORKSPACES: the workspaces holding live secrets, with their counts. No session: a
//! session names one workspace, and this lists them all; the socket's peer check (same
//! uid) authorizes it, as it does STATUS.

use crate::error::Outcome;
use crate::state::AgentState;
use avp_protocol::{Response, Timestamp, WorkspaceCount, WorkspacesResult};

pub fn run(state: &AgentState) -> Outcome {
    let backend = state.lock_state.backend()?;
    let all = backend.workspaces(Timestamp::now())?;
    let truncated = all.len() > WorkspacesResult::MAX_LISTED;
    let workspaces = all
        .into_iter()
        .take(WorkspacesResult::MAX_LISTED)
        .map(|(workspace, secrets)| WorkspaceCount { workspace, secrets })
        .collect();
    Ok(Response::Workspaces(WorkspacesResult {
        workspaces,
        truncated,
    }))
}
