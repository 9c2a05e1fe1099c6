//! Doctests only (`cfg(doctest)`): each fails if a public error enum of this crate loses
//! `#[non_exhaustive]`, which lets a later version add variants without breaking the
//! programs that match on them.

/// `ErrorCode` is `#[non_exhaustive]`: naming every variant is not enough outside the crate.
/// ```compile_fail
/// use avp_protocol::ErrorCode;
/// fn index(e: &ErrorCode) -> u8 {
///     match e {
///         ErrorCode::AuthenticationFailed => 0,
///         ErrorCode::SessionExpired => 1,
///         ErrorCode::SessionTerminated => 2,
///         ErrorCode::SessionNotFound => 3,
///         ErrorCode::SecretNotFound => 4,
///         ErrorCode::InvalidName => 5,
///         ErrorCode::InvalidWorkspace => 6,
///         ErrorCode::CapacityExceeded => 7,
///         ErrorCode::BackendError => 8,
///         ErrorCode::BackendUnavailable => 9,
///         ErrorCode::RateLimitExceeded => 10,
///         ErrorCode::ValueTooLarge => 11,
///         ErrorCode::EncryptionError => 12,
///         ErrorCode::IntegrityError => 13,
///         ErrorCode::VaultLocked => 14,
///         ErrorCode::VaultNotInitialized => 15,
///         ErrorCode::PermissionDenied => 16,
///         ErrorCode::InvalidRequest => 17,
///         ErrorCode::ProtocolError => 18,
///         ErrorCode::VersionMismatch => 19,
///     }
/// }
/// ```
/// The same match with a catch-all compiles (so the failure above is the missing arm, not a
/// misspelt variant).
/// ```
/// use avp_protocol::ErrorCode;
/// fn index(e: &ErrorCode) -> u8 {
///     match e {
///         ErrorCode::AuthenticationFailed => 0,
///         ErrorCode::SessionExpired => 1,
///         ErrorCode::SessionTerminated => 2,
///         ErrorCode::SessionNotFound => 3,
///         ErrorCode::SecretNotFound => 4,
///         ErrorCode::InvalidName => 5,
///         ErrorCode::InvalidWorkspace => 6,
///         ErrorCode::CapacityExceeded => 7,
///         ErrorCode::BackendError => 8,
///         ErrorCode::BackendUnavailable => 9,
///         ErrorCode::RateLimitExceeded => 10,
///         ErrorCode::ValueTooLarge => 11,
///         ErrorCode::EncryptionError => 12,
///         ErrorCode::IntegrityError => 13,
///         ErrorCode::VaultLocked => 14,
///         ErrorCode::VaultNotInitialized => 15,
///         ErrorCode::PermissionDenied => 16,
///         ErrorCode::InvalidRequest => 17,
///         ErrorCode::ProtocolError => 18,
///         ErrorCode::VersionMismatch => 19,
///         _ => u8::MAX,
///     }
/// }
/// ```
pub struct ErrorCodeIsNonExhaustive;

/// `FrameError` is `#[non_exhaustive]`: naming every variant is not enough outside the crate.
/// ```compile_fail
/// use avp_protocol::FrameError;
/// fn index(e: &FrameError) -> u8 {
///     match e {
///         FrameError::TooLarge(_) => 0,
///         FrameError::Truncated => 1,
///         FrameError::Malformed => 2,
///         FrameError::Rejected(..) => 3,
///         FrameError::EncodeTooLarge => 4,
///         FrameError::Encode => 5,
///         FrameError::Io(_) => 6,
///     }
/// }
/// ```
/// The same match with a catch-all compiles (so the failure above is the missing arm, not a
/// misspelt variant).
/// ```
/// use avp_protocol::FrameError;
/// fn index(e: &FrameError) -> u8 {
///     match e {
///         FrameError::TooLarge(_) => 0,
///         FrameError::Truncated => 1,
///         FrameError::Malformed => 2,
///         FrameError::Rejected(..) => 3,
///         FrameError::EncodeTooLarge => 4,
///         FrameError::Encode => 5,
///         FrameError::Io(_) => 6,
///         _ => u8::MAX,
///     }
/// }
/// ```
pub struct FrameErrorIsNonExhaustive;

/// `DecodeError` is `#[non_exhaustive]`: naming every variant is not enough outside the crate.
/// ```compile_fail
/// use avp_protocol::codec::DecodeError;
/// fn index(e: &DecodeError) -> u8 {
///     match e {
///         DecodeError::Undecodable => 0,
///         DecodeError::Rejected(..) => 1,
///     }
/// }
/// ```
/// The same match with a catch-all compiles (so the failure above is the missing arm, not a
/// misspelt variant).
/// ```
/// use avp_protocol::codec::DecodeError;
/// fn index(e: &DecodeError) -> u8 {
///     match e {
///         DecodeError::Undecodable => 0,
///         DecodeError::Rejected(..) => 1,
///         _ => u8::MAX,
///     }
/// }
/// ```
pub struct DecodeErrorIsNonExhaustive;

/// `EncodeError` is `#[non_exhaustive]`: naming every variant is not enough outside the crate.
/// ```compile_fail
/// use avp_protocol::codec::EncodeError;
/// fn index(e: &EncodeError) -> u8 {
///     match e {
///         EncodeError::TooLarge => 0,
///         EncodeError::Failed => 1,
///     }
/// }
/// ```
/// The same match with a catch-all compiles (so the failure above is the missing arm, not a
/// misspelt variant).
/// ```
/// use avp_protocol::codec::EncodeError;
/// fn index(e: &EncodeError) -> u8 {
///     match e {
///         EncodeError::TooLarge => 0,
///         EncodeError::Failed => 1,
///         _ => u8::MAX,
///     }
/// }
/// ```
pub struct EncodeErrorIsNonExhaustive;
