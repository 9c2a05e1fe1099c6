//! DELETE: remove every version; deleting nothing is not an error.

use super::SecretCtx;
use crate::error::Outcome;
use avp_protocol::{DeleteResult, Response, SecretName, Timestamp};

pub fn run(ctx: &SecretCtx, name: &SecretName) -> Outcome {
    let deleted = ctx.backend.delete(&ctx.workspace, name, Timestamp::now())?;
    Ok(Response::Deleted(DeleteResult { deleted }))
}
