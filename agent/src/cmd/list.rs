//! LIST: one page of metadata, keyset-paginated by name.

use super::SecretCtx;
use crate::error::{Failure, Outcome};
use crate::state::AgentState;
use avp_protocol::{Cursor, ErrorCode, Labels, Response, Timestamp};

pub fn run(
    ctx: &SecretCtx,
    state: &AgentState,
    label_filter: &Labels,
    cursor: Option<Cursor>,
    limit: Option<u32>,
) -> Outcome {
    let limits = state.settings.limits;
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
