//! The AVP decisions, made once (PROTOCOL.md §9.2–§9.7): what a put, a rotate or a delete does to a
//! secret, which versions are retained, what counts as expired, how a LIST page is cut.
//!
//! Pure: no storage, no locks, no I/O, no clock — every function is given the state it
//! decides on and `now`. Every backend calls these and only loads, seals and persists, so
//! the backends cannot drift apart on a rule. Nothing here imports anything of the agent
//! above it (checked by `agent/tests/layers.rs`).
//!
//! Modules: [`write`](mod@write) (put, rotate, delete, retention), [`page`] (the LIST page cut).

pub mod page;
pub mod write;

use avp_protocol::Timestamp;

/// Why a request breaks a rule. Messages are fixed text: never a value or request bytes.
/// Storage maps each to its `BackendError` (and so to one wire code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No such live secret or version.
    #[error("secret not found")]
    NotFound,
    /// The value exceeds `Limits::max_secret_value_length`.
    #[error("value exceeds the 65,536-byte limit")]
    ValueTooLarge,
    /// The workspace is full, or the secret's version number cannot grow.
    #[error("workspace holds the maximum number of secrets (10,000): delete some first")]
    CapacityExceeded,
    /// The request is unacceptable; the text says why and what to do.
    #[error("{0}")]
    InvalidRequest(&'static str),
}

/// Why a STORE setting an expiry at or before now is refused, and what to do instead.
pub const PAST_EXPIRY: &str =
    "expires_at is in the past: give a future time, or keep or clear the expiry";

/// An expired secret (`expires_at <= now`) is invisible to every operation and counts as
/// absent.
pub fn is_expired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|at| at <= now)
}
