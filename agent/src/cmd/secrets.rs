//! The secret operations — STORE, RETRIEVE, DELETE, ROTATE, HISTORY, LIST — once the
//! dispatcher has resolved the session ([`SecretCtx`]). Each is one backend call (the
//! backend applies the AVP rules), so they share this file; only LIST checks a field here.

use crate::error::{Failure, Outcome};
use crate::lock_state::OpenBackend;
use avp_protocol::{
    Cursor, DeleteResult, ErrorCode, ExpiryChange, Labels, Limits, Response, SecretName,
    SecretValue, Timestamp, WorkspaceId,
};
use std::sync::Arc;

/// A secret operation's context: an open backend and the session's workspace.
#[derive(Debug)]
pub struct SecretCtx {
    /// The unlocked backend (kept alive for the operation even if the vault locks meanwhile).
    pub backend: Arc<OpenBackend>,
    /// The workspace the session is bound to.
    pub workspace: WorkspaceId,
}

/// STORE: create a secret or add a version. Durable before it is acknowledged.
pub fn store(
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

/// RETRIEVE: the current or a retained version. Never writes.
pub fn retrieve(ctx: &SecretCtx, name: &SecretName, version: Option<u32>) -> Outcome {
    let secret = ctx
        .backend
        .retrieve(&ctx.workspace, name, version, Timestamp::now())?;
    Ok(Response::Retrieved(secret))
}

/// DELETE: remove every version; deleting nothing is not an error.
pub fn delete(ctx: &SecretCtx, name: &SecretName) -> Outcome {
    let deleted = ctx.backend.delete(&ctx.workspace, name, Timestamp::now())?;
    Ok(Response::Deleted(DeleteResult { deleted }))
}

/// ROTATE: a new version of an existing secret, keeping its labels and expiry.
pub fn rotate(ctx: &SecretCtx, name: &SecretName, value: SecretValue) -> Outcome {
    let result = ctx
        .backend
        .rotate(&ctx.workspace, name, value, Timestamp::now())?;
    Ok(Response::Rotated(result))
}

/// HISTORY: retained version numbers and times, never values.
pub fn history(ctx: &SecretCtx, name: &SecretName) -> Outcome {
    let history = ctx
        .backend
        .history(&ctx.workspace, name, Timestamp::now())?;
    Ok(Response::History(history))
}

/// LIST: one page of metadata, keyset-paginated by name.
pub fn list(
    ctx: &SecretCtx,
    limits: Limits,
    label_filter: &Labels,
    cursor: Option<Cursor>,
    limit: Option<u32>,
) -> Outcome {
    let limit = limit.unwrap_or(limits.default_list_limit);
    if limit == 0 || limit > limits.max_list_limit {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "list limit must be between 1 and 1000",
        ));
    }
    let after = cursor.as_ref().map(Cursor::position).transpose()?;
    let page = ctx.backend.list(
        &ctx.workspace,
        label_filter,
        after.as_ref(),
        limit as usize,
        Timestamp::now(),
    )?;
    Ok(Response::Listed(page))
}
