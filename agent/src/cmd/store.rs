//! STORE: create a secret or add a version. Durable before it is acknowledged.

use super::{SecretCtx, blocking};
use crate::error::Outcome;
use avp_protocol::{Labels, Response, SecretName, SecretValue, Timestamp};

pub fn run(
    ctx: &SecretCtx,
    name: &SecretName,
    value: SecretValue,
    labels: Option<Labels>,
    expires_at: Option<Timestamp>,
) -> Outcome {
    let result = blocking(|| {
        ctx.backend.store(
            &ctx.workspace,
            name,
            value,
            labels,
            expires_at,
            Timestamp::now(),
        )
    })?;
    Ok(Response::Stored(result))
}
