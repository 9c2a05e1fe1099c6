//! AVP error codes with their exact wire strings, and the error a response carries.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Every error code avp answers with. The string forms are those of the AVP specification
/// plus this project's own; they appear verbatim on every surface (wire, CLI, JSON, audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A passphrase was wrong, or a secret could not be authenticated.
    AuthenticationFailed,
    /// The session's TTL has run out.
    SessionExpired,
    /// The session was ended explicitly (TERMINATE or LOCK).
    SessionTerminated,
    /// No such session exists (never issued, or forgotten long ago).
    SessionNotFound,
    /// No such secret, version, or the secret has expired.
    SecretNotFound,
    /// A secret name fails validation.
    InvalidName,
    /// A workspace id fails validation, or a session is used outside its workspace.
    InvalidWorkspace,
    /// A count limit (secrets, labels, sessions) would be exceeded.
    CapacityExceeded,
    /// The storage backend failed (disk full, read-only, I/O error).
    BackendError,
    /// The storage backend cannot be reached.
    BackendUnavailable,
    /// Too many requests; try again later.
    RateLimitExceeded,
    /// A value is larger than the limit.
    ValueTooLarge,
    /// Encrypting or decrypting failed for a reason other than a wrong key.
    EncryptionError,
    /// Stored data is corrupt or does not belong to this vault.
    IntegrityError,
    /// The vault is locked; unlock it first.
    VaultLocked,
    /// No vault exists yet; create one with `avp init`.
    VaultNotInitialized,
    /// The peer is not allowed to talk to this agent.
    PermissionDenied,
    /// The request is well-formed but not acceptable (bad limit, cursor, label…).
    InvalidRequest,
    /// The bytes on the wire are not a valid frame or message.
    ProtocolError,
    /// Client and agent speak different protocol versions.
    VersionMismatch,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 20] = [
        Self::AuthenticationFailed,
        Self::SessionExpired,
        Self::SessionTerminated,
        Self::SessionNotFound,
        Self::SecretNotFound,
        Self::InvalidName,
        Self::InvalidWorkspace,
        Self::CapacityExceeded,
        Self::BackendError,
        Self::BackendUnavailable,
        Self::RateLimitExceeded,
        Self::ValueTooLarge,
        Self::EncryptionError,
        Self::IntegrityError,
        Self::VaultLocked,
        Self::VaultNotInitialized,
        Self::PermissionDenied,
        Self::InvalidRequest,
        Self::ProtocolError,
        Self::VersionMismatch,
    ];

    /// The exact string form, e.g. `SECRET_NOT_FOUND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthenticationFailed => "AUTHENTICATION_FAILED",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::SessionTerminated => "SESSION_TERMINATED",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::SecretNotFound => "SECRET_NOT_FOUND",
            Self::InvalidName => "INVALID_NAME",
            Self::InvalidWorkspace => "INVALID_WORKSPACE",
            Self::CapacityExceeded => "CAPACITY_EXCEEDED",
            Self::BackendError => "BACKEND_ERROR",
            Self::BackendUnavailable => "BACKEND_UNAVAILABLE",
            Self::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            Self::ValueTooLarge => "VALUE_TOO_LARGE",
            Self::EncryptionError => "ENCRYPTION_ERROR",
            Self::IntegrityError => "INTEGRITY_ERROR",
            Self::VaultLocked => "VAULT_LOCKED",
            Self::VaultNotInitialized => "VAULT_NOT_INITIALIZED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::ProtocolError => "PROTOCOL_ERROR",
            Self::VersionMismatch => "VERSION_MISMATCH",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string was not one of the codes in [`ErrorCode::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown AVP error code")]
pub struct UnknownErrorCode;

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or(UnknownErrorCode)
    }
}

/// An error answer: the code plus a message for a person. The message never contains a
/// secret value, a passphrase, or any bytes copied from the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The machine-readable AVP code.
    pub code: ErrorCode,
    /// What went wrong and, where there is one, what to do next.
    pub message: String,
}

impl ErrorResponse {
    /// An error answer with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorResponse {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        assert!("NOT_A_CODE".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn string_forms_are_exact() {
        assert_eq!(ErrorCode::SecretNotFound.as_str(), "SECRET_NOT_FOUND");
        assert_eq!(
            ErrorCode::VaultNotInitialized.as_str(),
            "VAULT_NOT_INITIALIZED"
        );
        assert_eq!(ErrorCode::VersionMismatch.as_str(), "VERSION_MISMATCH");
    }
}
