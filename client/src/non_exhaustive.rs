//! Doctests only (`cfg(doctest)`): each fails if a public error enum of this crate loses
//! `#[non_exhaustive]`, which lets a later version add variants without breaking the
//! programs that match on them.

/// `Error` is `#[non_exhaustive]`: naming every variant is not enough outside the crate.
/// ```compile_fail
/// use avp_client::Error;
/// fn index(e: &Error) -> u8 {
///     match e {
///         Error::NoAgent { .. } => 0,
///         Error::Disconnected { .. } => 1,
///         Error::UntrustedSocket { .. } => 2,
///         Error::Timeout { .. } => 3,
///         Error::VersionMismatch { .. } => 4,
///         Error::VaultLocked => 5,
///         Error::VaultNotInitialized => 6,
///         Error::Agent { .. } => 7,
///         Error::Invalid(_) => 8,
///         Error::ValueTooLarge { .. } => 9,
///         Error::Protocol(_) => 10,
///         Error::UnexpectedResponse { .. } => 11,
///         Error::Io { .. } => 12,
///         Error::SecretNotFound { .. } => 13,
///         Error::UnknownSource => 14,
///         Error::SecretsDirUnset => 15,
///     }
/// }
/// ```
/// The same match with a catch-all compiles (so the failure above is the missing arm, not a
/// misspelt variant).
/// ```
/// use avp_client::Error;
/// fn index(e: &Error) -> u8 {
///     match e {
///         Error::NoAgent { .. } => 0,
///         Error::Disconnected { .. } => 1,
///         Error::UntrustedSocket { .. } => 2,
///         Error::Timeout { .. } => 3,
///         Error::VersionMismatch { .. } => 4,
///         Error::VaultLocked => 5,
///         Error::VaultNotInitialized => 6,
///         Error::Agent { .. } => 7,
///         Error::Invalid(_) => 8,
///         Error::ValueTooLarge { .. } => 9,
///         Error::Protocol(_) => 10,
///         Error::UnexpectedResponse { .. } => 11,
///         Error::Io { .. } => 12,
///         Error::SecretNotFound { .. } => 13,
///         Error::UnknownSource => 14,
///         Error::SecretsDirUnset => 15,
///         _ => u8::MAX,
///     }
/// }
/// ```
pub struct ErrorIsNonExhaustive;

/// `Untrusted` is `#[non_exhaustive]`: naming every variant is not enough outside the crate.
/// ```compile_fail
/// use avp_client::Untrusted;
/// fn index(e: &Untrusted) -> u8 {
///     match e {
///         Untrusted::PeerUid { .. } => 0,
///         Untrusted::DirectoryOwner { .. } => 1,
///         Untrusted::DirectoryWritable { .. } => 2,
///     }
/// }
/// ```
/// The same match with a catch-all compiles (so the failure above is the missing arm, not a
/// misspelt variant).
/// ```
/// use avp_client::Untrusted;
/// fn index(e: &Untrusted) -> u8 {
///     match e {
///         Untrusted::PeerUid { .. } => 0,
///         Untrusted::DirectoryOwner { .. } => 1,
///         Untrusted::DirectoryWritable { .. } => 2,
///         _ => u8::MAX,
///     }
/// }
/// ```
pub struct UntrustedIsNonExhaustive;
