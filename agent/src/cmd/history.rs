//! HISTORY: retained version numbers and times, never values.

use super::{SecretCtx, blocking};
use crate::error::Outcome;
use avp_protocol::{Response, SecretName, Timestamp};

pub fn run(ctx: &SecretCtx, name: &SecretName) -> Outcome {
    let read = || ctx.backend.history(&ctx.workspace, name, Timestamp::now());
    let history = if ctx.backend.reads_are_local() {
        read()
    } else {
        blocking(read)
    }?;
    Ok(Response::History(history))
}
