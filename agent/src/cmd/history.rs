//! HISTORY: retained version numbers and times, never values.

use super::SecretCtx;
use crate::error::Outcome;
use avp_protocol::{Response, SecretName, Timestamp};

pub fn run(ctx: &SecretCtx, name: &SecretName) -> Outcome {
    let history = ctx
        .backend
        .history(&ctx.workspace, name, Timestamp::now())?;
    Ok(Response::History(history))
}
