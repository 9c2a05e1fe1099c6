//! RETRIEVE: the current or a retained version. Never writes.

use super::SecretCtx;
use crate::error::Outcome;
use avp_protocol::{Response, SecretName, Timestamp};

pub fn run(ctx: &SecretCtx, name: &SecretName, version: Option<u32>) -> Outcome {
    let secret = ctx
        .backend
        .retrieve(&ctx.workspace, name, version, Timestamp::now())?;
    Ok(Response::Retrieved(secret))
}
