//! The commands added after the first ones, one file each: `set --generate`
//! ([`generated`]), `edit`, `cp`/`mv` ([`copy`]), `restore`, `workspaces`, `ls --values`
//! ([`values`]), `audit`, and `rm`'s confirmation ([`confirm`]). Each file holds its clap
//! arguments next to the code that uses them.

pub mod audit;
pub mod confirm;
pub mod copy;
pub mod edit;
pub mod generated;
pub mod restore;
pub mod values;
pub mod workspaces;

use crate::fail::Failure;
use avp_client::{Client, ErrorCode, SecretName, Session};

/// Whether `name` exists in the session's workspace, asked with HISTORY (metadata only,
/// so no value crosses the socket for the question).
pub fn exists(client: &mut Client, session: &Session, name: &SecretName) -> Result<bool, Failure> {
    match client.history(session, name) {
        Ok(_) => Ok(true),
        Err(err) if err.code() == Some(ErrorCode::SecretNotFound) => Ok(false),
        Err(err) => Err(err.into()),
    }
}
