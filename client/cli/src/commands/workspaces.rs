//! `avp workspaces`: the workspaces holding live secrets, with their counts (AVP
//! WORKSPACES, which needs no session).

use crate::context::Ctx;
use crate::fail::Failure;
use crate::output::{self, print_json};
use avp_client::WorkspacesResult;
use serde_json::json;

pub fn list(ctx: &Ctx) -> Result<(), Failure> {
    let result = ctx.connect()?.workspaces()?;
    if ctx.json {
        let items: Vec<_> = result
            .workspaces
            .iter()
            .map(|w| json!({"workspace": w.workspace.as_str(), "secrets": w.secrets}))
            .collect();
        return print_json(&json!({"workspaces": items, "truncated": result.truncated}));
    }
    if result.workspaces.is_empty() {
        output::note("no workspace holds secrets yet — store one with `avp set NAME`");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = result
        .workspaces
        .iter()
        .map(|w| vec![w.workspace.to_string(), w.secrets.to_string()])
        .collect();
    output::print_table(&["WORKSPACE", "SECRETS"], &rows)?;
    if result.truncated {
        output::warn(&format!(
            "only the first {} workspaces are listed",
            WorkspacesResult::MAX_LISTED
        ));
    }
    Ok(())
}
