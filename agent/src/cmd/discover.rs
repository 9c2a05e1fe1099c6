//! DISCOVER: what this agent is and can do. Needs no session; every flag is honest.

use crate::state::AgentState;
use avp_protocol::{
    BackendInfo, BackendStatus, Capabilities, DiscoverInfo, PROTOCOL_VERSION, Response, Timestamp,
};

/// How callers authenticate: the kernel's peer credentials (same uid as the agent).
pub const AUTH_METHODS: &[&str] = &["peer_credentials"];

/// The backend's status and, when degraded, since when (no I/O: the last known
/// reachability).
pub fn backend_status(state: &AgentState) -> (BackendStatus, Option<Timestamp>) {
    let key_store = state.lock_state.key_store();
    let unlocked = state.lock_state.is_unlocked();
    if key_store.is_reachable() {
        let status = if unlocked {
            BackendStatus::Available
        } else {
            BackendStatus::Locked
        };
        return (status, None);
    }
    // Reads keep working from last-known state only while a vault is open.
    match key_store.degraded_since() {
        Some(since) if unlocked => (BackendStatus::Degraded, Some(since)),
        _ => (BackendStatus::Unavailable, None),
    }
}

pub fn run(state: &AgentState) -> Response {
    let (status, degraded_since) = backend_status(state);
    Response::Discover(DiscoverInfo {
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        conformance: avp_protocol::CONFORMANCE.to_owned(),
        backend: BackendInfo {
            name: state.lock_state.key_store().name().to_owned(),
            status,
            degraded_since,
        },
        capabilities: Capabilities {
            versioning: true,
            expiration: true,
            rotation: true,
            audit: state.audit.is_some(),
        },
        auth_methods: AUTH_METHODS.iter().map(|m| (*m).to_owned()).collect(),
        limits: state.settings.limits,
    })
}
