//! Wire types, validation and bounded framing of the Agent Vault Protocol as avp speaks it.
//!
//! Modules, one job each:
//! - [`types`]: validated newtypes — [`SecretName`], [`WorkspaceId`], [`SessionId`],
//!   [`Labels`], [`Timestamp`], [`ExpiryChange`], [`Cursor`] — and the [`Limits`] the agent enforces.
//! - [`secret`]: [`SecretValue`] and [`Passphrase`], zeroized on drop, redacted in `Debug`.
//! - [`error`]: [`ErrorCode`] with the exact AVP string forms, and the wire [`ErrorResponse`].
//! - [`request`]: every [`Request`] a client may send.
//! - [`response`]: every [`Response`] and the typed result of each operation.
//! - [`codec`]: the only place that knows the payload is bincode; always byte-limited.
//! - [`frame`]: 4-byte big-endian length prefix, the 1 MiB cap enforced before allocating,
//!   and blocking and async read/write helpers that tell *incomplete* from *invalid*.
//! - `json` (feature `json`): the JSON-lines encoding of the same requests and answers (PROTOCOL.md §12),
//!   for clients in any language on the same socket.
//! - [`socket_path`]: where the agent's socket is (`AVP_SOCK`, then the XDG default), the
//!   one rule the agent and the clients share.
//!
//! The protocol version is one explicit constant, [`PROTOCOL_VERSION`]; the first exchange
//! on every connection is [`Request::Hello`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod error;
pub mod frame;
#[cfg(feature = "json")]
pub mod json;
#[cfg(doctest)]
mod non_exhaustive;
pub mod request;
pub mod response;
pub mod secret;
pub mod socket_path;
pub mod types;

pub use error::{ErrorCode, ErrorResponse};
pub use frame::{FrameBuf, FrameError, MAX_FRAME_LEN};
pub use request::Request;
pub use response::{
    BackendInfo, BackendStatus, Capabilities, DeleteResult, DiscoverInfo, Hardening, HistoryResult,
    ListPage, LockReason, Response, RotateResult, Secret, SecretMeta, SessionInfo, StatusInfo,
    StoreResult, VaultState, VersionInfo, WorkspaceCount, WorkspacesResult,
};
pub use secret::{Passphrase, SecretValue};
pub use types::{
    Cursor, ExpiryChange, Labels, Limits, SecretName, SessionId, Timestamp, ValidationError,
    WorkspaceId,
};

/// The version of the wire protocol. Bumped on any change to [`Request`] or [`Response`]
/// that an older peer could misread; checked by the `Hello` exchange on every connection.
pub const PROTOCOL_VERSION: u32 = 2;

/// The conformance level avp claims in DISCOVER: every AVP operation and rule is implemented.
pub const CONFORMANCE: &str = "full";

#[cfg(test)]
mod tests {
    use super::*;

    /// The version is a literal that changes only on purpose: a protocol change that
    /// forgets to bump it (or bumps it by accident) fails here, not in the field.
    #[test]
    fn protocol_version_is_pinned() {
        assert_eq!(PROTOCOL_VERSION, 2);
    }

    /// `Hello` is the first variant of both enums and holds one `u32`, so a peer of any
    /// version can read the greeting and answer `VERSION_MISMATCH` with both numbers.
    #[test]
    fn hello_has_a_fixed_layout() {
        let expected = [0, 0, 0, 2, 0, PROTOCOL_VERSION as u8];
        let request = frame::encode(&Request::Hello {
            version: PROTOCOL_VERSION,
        })
        .unwrap();
        assert_eq!(*request, expected);
        let response = frame::encode(&Response::Hello {
            version: PROTOCOL_VERSION,
        })
        .unwrap();
        assert_eq!(*response, expected);
        // A future version still decodes as a Hello carrying that number.
        let future = frame::encode(&Request::Hello { version: 70_000 }).unwrap();
        let (decoded, _) = frame::decode_frame::<Request>(&future).unwrap().unwrap();
        assert_eq!(decoded, Request::Hello { version: 70_000 });
    }

    #[test]
    fn conformance_is_full() {
        assert_eq!(CONFORMANCE, "full");
    }
}
