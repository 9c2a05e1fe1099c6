//! Secret commands: `set`, `get`, `ls`, `rm`, `rotate`, `history`.

use crate::cli::{GetArgs, LsArgs, NameArg, RmArgs, RotateArgs, SetArgs};
use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::output::{self, print_json, rfc3339, rfc3339_json};
use crate::{generate, input};
use avp_client::{Error, ErrorCode, Labels, SecretName, StoreOptions, Timestamp, WorkspaceId};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `SECRET_NOT_FOUND` naming the secret and the workspace, in place of the agent's
/// generic message.
fn not_found(name: &SecretName, workspace: &WorkspaceId, what: &str) -> Failure {
    Failure::refused(
        ErrorCode::SecretNotFound,
        format!("no {what}secret `{name}` in workspace `{workspace}`"),
        "list the workspace's secrets with `avp ls`",
    )
}

/// Replaces the agent's `SECRET_NOT_FOUND` with [`not_found`]; keeps other failures.
fn name_missing(err: Error, name: &SecretName, ws: &WorkspaceId, what: &str) -> Failure {
    match err.code() {
        Some(ErrorCode::SecretNotFound) => not_found(name, ws, what),
        _ => Failure::Client(err),
    }
}

fn expiry(args: &SetArgs) -> Result<Option<Timestamp>, Failure> {
    if let Some(after) = args.expires_in {
        return Ok(Some(Timestamp::now().plus_seconds(after.as_secs().max(1))));
    }
    let Some(text) = &args.expires_at else {
        return Ok(None);
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        Failure::usage(
            "--expires-at is not an RFC 3339 time",
            "write it like 2030-01-31T12:00:00Z",
        )
    })?;
    let at = Timestamp::from_unix(at.unix_timestamp());
    if at <= Timestamp::now() {
        return Err(Failure::usage(
            "--expires-at is in the past",
            "give a time in the future",
        ));
    }
    Ok(Some(at))
}

pub fn set(ctx: &Ctx, args: SetArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let expires_at = expiry(&args)?;
    let labels = if args.clear_labels {
        Some(Labels::empty())
    } else if args.labels.is_empty() {
        None
    } else {
        Some(context::labels(args.labels)?)
    };
    let value = input::value(args.value, name.as_str())?;
    let result = ctx.with_session(|client, session| {
        let options = StoreOptions { labels, expires_at };
        Ok(client.store(session, &name, value, options)?)
    })?;
    if ctx.json {
        return print_json(&json!({
            "name": name.as_str(),
            "version": result.version,
            "created": result.created,
            "created_at": rfc3339(result.created_at),
            "updated_at": rfc3339(result.updated_at),
        }));
    }
    let how = if result.created { "created" } else { "updated" };
    output::print(&format!(
        "{how} {name} in workspace {workspace}: version {}\n",
        result.version
    ))
}

pub fn get(ctx: &Ctx, args: GetArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let what = args
        .version
        .map_or(String::new(), |v| format!("version {v} of "));
    let secret = ctx.with_session(|client, session| {
        client
            .retrieve(session, &name, args.version)
            .map_err(|err| name_missing(err, &name, &workspace, &what))
    })?;
    let value = secret.value.expose_secret();
    let doc = if ctx.json {
        let rest = json!({
            "version": secret.version,
            "labels": output::labels_json(&secret.labels),
            "created_at": rfc3339(secret.created_at),
            "updated_at": rfc3339(secret.updated_at),
            "expires_at": rfc3339_json(secret.expires_at),
        });
        let rest = rest.to_string();
        output::render_secret(|out| {
            out.write_all(b"{\"name\":")?;
            output::write_json_string(out, secret.name.as_str())?;
            out.write_all(b",")?;
            output::write_value_fields(out, value)?;
            out.write_all(b",")?;
            // `rest` is `{...}`: splice its members in after ours.
            out.write_all(&rest.as_bytes()[1..])?;
            out.write_all(b"\n")
        })?
    } else {
        let newline = output::stdout_is_terminal();
        output::render_secret(|out| {
            out.write_all(value)?;
            if newline {
                out.write_all(b"\n")?;
            }
            Ok(())
        })?
    };
    output::write_secret(&doc)
}

pub fn ls(ctx: &Ctx, args: LsArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let filter = context::labels(args.labels)?;
    let secrets = ctx.with_session(|client, session| Ok(client.list_all(session, &filter)?))?;
    if ctx.json {
        let items: Vec<_> = secrets
            .iter()
            .map(|s| {
                json!({
                    "name": s.name.as_str(),
                    "version": s.version,
                    "labels": output::labels_json(&s.labels),
                    "created_at": rfc3339(s.created_at),
                    "updated_at": rfc3339(s.updated_at),
                    "expires_at": rfc3339_json(s.expires_at),
                })
            })
            .collect();
        return print_json(&json!({"workspace": workspace.as_str(), "secrets": items}));
    }
    if secrets.is_empty() {
        output::note(&format!("no secrets in workspace `{workspace}`"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                s.version.to_string(),
                output::labels_text(&s.labels),
                rfc3339(s.updated_at),
            ]
        })
        .collect();
    output::print_table(&["NAME", "VERSION", "LABELS", "UPDATED"], &rows)
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let result = ctx.with_session(|client, session| Ok(client.delete(session, &name)?))?;
    if !result.deleted && !args.force {
        return Err(not_found(&name, &workspace, ""));
    }
    if ctx.json {
        return print_json(&json!({"name": name.as_str(), "deleted": result.deleted}));
    }
    if result.deleted {
        output::print(&format!("deleted {name} from workspace {workspace}\n"))
    } else {
        output::print(&format!("{name} did not exist in workspace {workspace}\n"))
    }
}

pub fn rotate(ctx: &Ctx, args: RotateArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let value = if args.generate {
        generate::alphanumeric(args.length as usize)?
    } else {
        input::value(args.value, name.as_str())?
    };
    let result = ctx.with_session(|client, session| {
        client
            .rotate(session, &name, value)
            .map_err(|err| name_missing(err, &name, &workspace, ""))
    })?;
    if ctx.json {
        return print_json(&json!({
            "name": name.as_str(),
            "previous_version": result.previous_version,
            "new_version": result.new_version,
            "updated_at": rfc3339(result.updated_at),
        }));
    }
    output::print(&format!(
        "rotated {name} in workspace {workspace}: version {} → {}\n",
        result.previous_version, result.new_version
    ))
}

pub fn history(ctx: &Ctx, args: NameArg) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let result = ctx.with_session(|client, session| {
        client
            .history(session, &name)
            .map_err(|err| name_missing(err, &name, &workspace, ""))
    })?;
    if ctx.json {
        let versions: Vec<_> = result
            .versions
            .iter()
            .map(|v| json!({"version": v.version, "created_at": rfc3339(v.created_at)}))
            .collect();
        return print_json(&json!({"name": name.as_str(), "versions": versions}));
    }
    let rows: Vec<Vec<String>> = result
        .versions
        .iter()
        .map(|v| vec![v.version.to_string(), rfc3339(v.created_at)])
        .collect();
    output::print_table(&["VERSION", "CREATED"], &rows)
}
