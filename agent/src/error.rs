//! The agent's one error type. Every failure a peer can see becomes a [`Failure`]: an AVP
//! code plus a fixed message that says what to do next. Nothing here ever interpolates
//! request bytes, values or passphrases.

use crate::storage::BackendError;
use avp_protocol::{ErrorCode, ErrorResponse, Response};
use std::borrow::Cow;

/// A refused request: the code and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The AVP code.
    pub code: ErrorCode,
    /// What went wrong and what to do next.
    pub message: Cow<'static, str>,
}

impl Failure {
    /// A failure with a fixed message.
    pub const fn new(code: ErrorCode, message: &'static str) -> Self {
        Self {
            code,
            message: Cow::Borrowed(message),
        }
    }

    /// The vault is locked.
    pub const fn locked() -> Self {
        Self::new(
            ErrorCode::VaultLocked,
            "the vault is locked: run `avp unlock`",
        )
    }

    /// No vault exists yet.
    pub const fn not_initialized() -> Self {
        Self::new(
            ErrorCode::VaultNotInitialized,
            "no vault exists yet: run `avp init`",
        )
    }

    /// The wire form.
    pub fn into_response(self) -> Response {
        Response::Error(ErrorResponse::new(self.code, self.message))
    }
}

impl From<BackendError> for Failure {
    fn from(err: BackendError) -> Self {
        let code = err.code();
        let message = match &err {
            BackendError::NotFound => Cow::Borrowed("secret not found in this workspace"),
            _ => Cow::Owned(err.to_string()),
        };
        Self { code, message }
    }
}

impl From<avp_protocol::ValidationError> for Failure {
    fn from(err: avp_protocol::ValidationError) -> Self {
        Self::new(err.code, err.reason)
    }
}

/// The result of one operation.
pub type Outcome = Result<Response, Failure>;
