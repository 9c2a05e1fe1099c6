//! DISCOVER: what this agent is and can do. Needs no session; every flag is honest.

use crate::state::AgentState;
use avp_protocol::{
    BackendInfo, BackendStatus, Capabilities, DiscoverInfo, PROTOCOL_VERSION, Response,
};

/// How callers authenticate: the kernel's peer credentials (same uid as the agent).
pub const AUTH_METHODS: &[&str] = &["peer_credentials"];

pub fn run(state: &AgentState) -> Response {
    // Last known reachability (no I/O here): a Redis that is down says so.
    let status = if !state.lock_state.key_store().is_reachable() {
        BackendStatus::Unavailable
    } else if state.lock_state.is_unlocked() {
        BackendStatus::Available
    } else {
        BackendStatus::Locked
    };
    Response::Discover(DiscoverInfo {
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        conformance: avp_protocol::CONFORMANCE.to_owned(),
        backend: BackendInfo {
            name: state.lock_state.key_store().name().to_owned(),
            status,
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
