//! STATUS: state, counters, timers, versions and the hardening facts.

use crate::state::AgentState;
use crate::timer::BootInstant;
use avp_protocol::{PROTOCOL_VERSION, Response, StatusInfo, Timestamp};

pub fn run(state: &AgentState) -> Response {
    let now = BootInstant::now();
    let backend = state.lock_state.backend().ok();
    let counts = backend
        .as_ref()
        .map(|b| b.counts(Timestamp::now()))
        .unwrap_or_default();
    let timers = state.lock_state.timers();
    Response::Status(StatusInfo {
        state: state.lock_state.vault_state(),
        vault_location: state.lock_state.key_store().location(),
        backend: state.lock_state.key_store().name().to_owned(),
        workspaces: counts.workspaces,
        secrets: counts.secrets,
        sessions: state.lock_state.sessions().live(now) as u64,
        idle_lock_in_seconds: timers.idle_remaining(now),
        max_unlock_in_seconds: timers.max_remaining(now),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        hardening: crate::harden::hardening_facts(),
        audit_log: state
            .audit
            .as_ref()
            .map(|audit| audit.path().display().to_string()),
    })
}
