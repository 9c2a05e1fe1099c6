//! STORE: create a secret or add a version. Durable before it is acknowledged.

use super::SecretCtx;
use crate::error::Outcome;
use avp_protocol::{ExpiryChange, Labels, Response, SecretName, SecretValue, Timestamp};

pub fn run(
    ctx: &SecretCtx,
    name: &SecretName,
    value: SecretValue,
    labels: Option<Labels>,
    expires_at: ExpiryChange,
) -> Outcome {
    let now = Timestamp::now();
    let result = ctx
        .backend
        .store(&ctx.workspace, name, value, labels, expires_at, now)?;
    Ok(Response::Stored(result))
}
