//! `avp cp SRC DST` and `avp mv SRC DST`, within and across workspaces. Each side is
//! `NAME` (in the `-w` workspace), `WS:NAME`, or for the destination `WS:` (the same name
//! in workspace WS) — neither names nor workspace ids can contain `:`. The current value is
//! copied with its labels and expiry (not the older versions); an existing destination is
//! refused unless `--force`; `mv` deletes the source only once the destination is stored.

use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::output::{self, print_json};
use avp_client::{
    Client, Error, ErrorCode, ExpiryChange, SecretName, Session, StoreOptions, StoreResult,
    WorkspaceId,
};
use clap::Args;
use serde_json::json;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The secret: NAME (in the -w workspace) or WS:NAME
    #[arg(value_name = "SRC")]
    pub source: String,

    /// Where to: NAME (in the -w workspace), WS:NAME, or WS: (the same name in WS)
    #[arg(value_name = "DST")]
    pub destination: String,

    /// Replace the destination if it exists (its old value stays in `avp history`)
    #[arg(short, long)]
    pub force: bool,
}

/// `cp` or `mv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Leave the source in place.
    Copy,
    /// Delete the source once the destination is stored.
    Move,
}

/// A secret's full address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Address {
    workspace: WorkspaceId,
    name: SecretName,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.workspace, self.name)
    }
}

/// `NAME`, `WS:NAME`, or `WS:` when `same_name` (the source's name) is given.
fn address(ctx: &Ctx, text: &str, same_name: Option<&SecretName>) -> Result<Address, Failure> {
    let Some((workspace, name)) = text.split_once(':') else {
        return Ok(Address {
            workspace: ctx.workspace()?,
            name: context::name(text)?,
        });
    };
    let workspace = WorkspaceId::new(workspace).map_err(Error::from)?;
    let name = match (name, same_name) {
        ("", Some(same)) => same.clone(),
        _ => context::name(name)?,
    };
    Ok(Address { workspace, name })
}

pub fn copy(ctx: &Ctx, args: CopyArgs, mode: Mode) -> Result<(), Failure> {
    let from = address(ctx, &args.source, None)?;
    let to = address(ctx, &args.destination, Some(&from.name))?;
    if from == to {
        return Err(Failure::usage(
            format!("{from} is both the source and the destination"),
            "give another name or workspace for the destination",
        ));
    }
    let mut client = ctx.connect()?;
    let source = ctx.open_session(&mut client, &from.workspace)?;
    let target = if to.workspace == from.workspace {
        None
    } else {
        Some(ctx.open_session(&mut client, &to.workspace)?)
    };
    let sessions = Sessions {
        source: &source,
        target: target.as_ref().unwrap_or(&source),
    };
    let result = transfer(&mut client, &sessions, &from, &to, args.force, mode);
    // The agent would expire them anyway; a failure to end them early changes nothing.
    if let Some(target) = target {
        let _ = client.terminate(target);
    }
    let _ = client.terminate(source);
    let stored = result?;
    let moved = mode == Mode::Move;
    if ctx.json {
        return print_json(&json!({
            "from": {"workspace": from.workspace.as_str(), "name": from.name.as_str()},
            "to": {"workspace": to.workspace.as_str(), "name": to.name.as_str()},
            "version": stored.version,
            "created": stored.created,
            "moved": moved,
        }));
    }
    let verb = if moved { "moved" } else { "copied" };
    output::print(&format!(
        "{verb} {from} to {to}: version {}\n",
        stored.version
    ))
}

/// The sessions on the source's and the destination's workspaces (the same one when they
/// are equal).
struct Sessions<'a> {
    source: &'a Session,
    target: &'a Session,
}

fn transfer(
    client: &mut Client,
    sessions: &Sessions<'_>,
    from: &Address,
    to: &Address,
    force: bool,
    mode: Mode,
) -> Result<StoreResult, Failure> {
    let secret = client
        .retrieve(sessions.source, &from.name, None)
        .map_err(|err| match err.code() {
            Some(ErrorCode::SecretNotFound) => Failure::refused(
                ErrorCode::SecretNotFound,
                format!(
                    "no secret `{}` in workspace `{}`",
                    from.name, from.workspace
                ),
                format!(
                    "list the workspace's secrets with `avp -w {} ls`",
                    from.workspace
                ),
            ),
            _ => Failure::Client(err),
        })?;
    if !force && super::exists(client, sessions.target, &to.name)? {
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!("{to} already exists"),
            "pass --force to replace its value (the old one stays in `avp history`)",
        ));
    }
    let options = StoreOptions {
        labels: Some(secret.labels),
        expires_at: secret
            .expires_at
            .map_or(ExpiryChange::Clear, ExpiryChange::Set),
    };
    let stored = client.store(sessions.target, &to.name, secret.value, options)?;
    if mode == Mode::Move {
        client
            .delete(sessions.source, &from.name)
            .map_err(|err| match err.code() {
                Some(code) => Failure::refused(
                    code,
                    format!("{to} was stored, but {from} could not be deleted"),
                    format!(
                        "delete it with `avp -w {} rm {}`",
                        from.workspace, from.name
                    ),
                ),
                None => Failure::Client(err),
            })?;
    }
    Ok(stored)
}
