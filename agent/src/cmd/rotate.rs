//! ROTATE: a new version of an existing secret, keeping its labels and expiry.

use super::SecretCtx;
use crate::error::Outcome;
use avp_protocol::{Response, SecretName, SecretValue, Timestamp};

pub fn run(ctx: &SecretCtx, name: &SecretName, value: SecretValue) -> Outcome {
    let result = ctx
        .backend
        .rotate(&ctx.workspace, name, value, Timestamp::now())?;
    Ok(Response::Rotated(result))
}
