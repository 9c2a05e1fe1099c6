//! `avp-client`: talk to the avp agent from Rust, blocking or async (feature `async`), or
//! fetch one secret in one call with [`get_secret`]. The `avp` command line is the separate
//! `avp-cli` package, so this library pulls in no CLI dependencies.
//!
//! Modules, one job each:
//! - [`client`]: [`Client`], the blocking client — one typed method per AVP operation.
//! - `async_client` (feature `async`): `AsyncClient`, the same typed calls on tokio.
//! - `connection` (private): connect, `Hello`, one bounded round trip under a timeout, and
//!   the mapping of transport failures to [`Error`].
//! - `calls` (private): each operation as a request plus the extraction of its typed
//!   result, shared by both clients so no raw response ever reaches a caller.
//! - [`session`]: [`Session`], the handle AUTHENTICATE returns.
//! - [`socket_path`]: where the agent's socket is (`AVP_SOCK`, then the XDG default).
//! - `trust` (private): before the first byte, the socket's directory and the peer's uid
//!   (`SO_PEERCRED`) must be ours, or the call fails with [`Error::UntrustedSocket`].
//! - [`error`]: [`Error`], typed, carrying the AVP [`ErrorCode`] and saying what to do next.
//! - `duration_text` (private): durations in error messages, as `1m 30s`.
//! - [`sources`]: [`get_secret`] and the [`SecretsBackend`]s it chooses from with
//!   `AVP_SOURCE` (`agent`, `env`, `dir`).
//!
//! Values come back as [`SecretValue`], wiped on drop and redacted in `Debug`.
#![forbid(unsafe_code)]

#[cfg(feature = "async")]
pub mod async_client;
mod calls;
pub mod client;
mod connection;
mod duration_text;
pub mod error;
#[cfg(doctest)]
mod non_exhaustive;
pub mod session;
pub mod sources;
mod trust;

#[cfg(feature = "async")]
pub use async_client::AsyncClient;
pub use calls::{DEFAULT_AGENT_ID, StoreOptions, UNLOCK_WAIT_TIMEOUT};
pub use client::Client;
pub use connection::DEFAULT_TIMEOUT;
pub use error::{Error, Result, Untrusted};
pub use session::Session;
pub use sources::{SecretsBackend, get_secret};

/// Where the agent's socket is: the rule lives in `avp-protocol`, shared with the agent.
pub use avp_protocol::socket_path;

pub use avp_protocol::{
    BackendStatus, Cursor, DeleteResult, DiscoverInfo, ErrorCode, ExpiryChange, HistoryResult,
    Labels, Limits, ListPage, LockReason, PROTOCOL_VERSION, Passphrase, RotateResult, Secret,
    SecretMeta, SecretName, SecretValue, StatusInfo, StoreResult, Timestamp, VaultState,
    VersionInfo, WorkspaceCount, WorkspaceId, WorkspacesResult,
};
