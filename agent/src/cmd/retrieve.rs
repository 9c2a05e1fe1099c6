//! RETRIEVE: the current or a retained version. Served from memory; never writes.

use super::{SecretCtx, blocking};
use crate::error::Outcome;
use avp_protocol::{Response, SecretName, Timestamp};

pub fn run(ctx: &SecretCtx, name: &SecretName, version: Option<u32>) -> Outcome {
    let read = || {
        ctx.backend
            .retrieve(&ctx.workspace, name, version, Timestamp::now())
    };
    let secret = if ctx.backend.reads_are_local() {
        read()
    } else {
        blocking(read)
    }?;
    Ok(Response::Retrieved(secret))
}
