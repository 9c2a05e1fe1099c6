//! `avp restore NAME --version N`: stores a retained older version's value again as a new
//! version — the undo for a bad `set` or `rotate`. Labels and expiry are kept (it is a
//! ROTATE with the old value), and the version being replaced stays in the history.

use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::output::{self, print_json, rfc3339};
use avp_client::ErrorCode;
use clap::Args;
use serde_json::json;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The secret's name
    pub name: String,

    /// The retained version whose value becomes current again (see `avp history NAME`)
    #[arg(long, value_name = "N", required = true)]
    pub version: u32,
}

pub fn restore(ctx: &Ctx, args: RestoreArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let version = args.version;
    let result = ctx.with_session(|client, session| {
        let old = client
            .retrieve(session, &name, Some(version))
            .map_err(|err| match err.code() {
                Some(ErrorCode::SecretNotFound) => Failure::refused(
                    ErrorCode::SecretNotFound,
                    format!("no version {version} of secret `{name}` in workspace `{workspace}`"),
                    format!("list its retained versions with `avp history {name}`"),
                ),
                _ => Failure::Client(err),
            })?;
        Ok(client.rotate(session, &name, old.value)?)
    })?;
    if ctx.json {
        return print_json(&json!({
            "name": name.as_str(),
            "restored_version": version,
            "previous_version": result.previous_version,
            "new_version": result.new_version,
            "updated_at": rfc3339(result.updated_at),
        }));
    }
    output::print(&format!(
        "restored {name} in workspace {workspace}: version {} holds the value of version {version}\n",
        result.new_version
    ))
}
