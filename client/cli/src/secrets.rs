//! Secret commands: `set`, `get`, `ls`, `rm`, `rotate`, `history`.

use crate::cli::{GetArgs, LsArgs, NameArg, RmArgs, RotateArgs, SetArgs};
use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::output::{self, print_json, rfc3339, rfc3339_json};
use crate::{clip, generate, input};
use avp_client::{
    Error, ErrorCode, ExpiryChange, Labels, SecretName, StoreOptions, Timestamp, WorkspaceId,
};
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
pub fn name_missing(err: Error, name: &SecretName, ws: &WorkspaceId, what: &str) -> Failure {
    match err.code() {
        Some(ErrorCode::SecretNotFound) => not_found(name, ws, what),
        _ => Failure::Client(err),
    }
}

/// `SECRET_NOT_FOUND` for a version that is not retained (or a secret that does not
/// exist): `avp history` lists the versions there are, and says when there is no secret.
fn version_missing(err: Error, name: &SecretName, ws: &WorkspaceId, version: u32) -> Failure {
    match err.code() {
        Some(ErrorCode::SecretNotFound) => Failure::refused(
            ErrorCode::SecretNotFound,
            format!("no version {version} of secret `{name}` in workspace `{ws}`"),
            format!("list its retained versions with `avp history {name}`"),
        ),
        _ => Failure::Client(err),
    }
}

/// `INVALID_REQUEST` for an expiry that is not in the future: the secret could never be
/// read, and an update would take its whole history with it.
fn past_expiry(problem: &str) -> Failure {
    Failure::refused(
        ErrorCode::InvalidRequest,
        problem,
        "give a time in the future, or remove the expiry with --no-expiry",
    )
}

pub(crate) fn expiry(args: &SetArgs) -> Result<ExpiryChange, Failure> {
    if args.no_expiry {
        return Ok(ExpiryChange::Clear);
    }
    if let Some(after) = args.expires_in {
        if after.as_secs() == 0 {
            return Err(past_expiry(
                "--expires-in must be at least 1s: the secret would expire at once",
            ));
        }
        return Ok(ExpiryChange::Set(
            Timestamp::now().plus_seconds(after.as_secs()),
        ));
    }
    let Some(text) = &args.expires_at else {
        return Ok(ExpiryChange::Keep);
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        Failure::usage(
            "--expires-at is not an RFC 3339 time",
            "write it like 2030-01-31T12:00:00Z",
        )
    })?;
    let at = Timestamp::from_unix(at.unix_timestamp());
    if at <= Timestamp::now() {
        return Err(past_expiry("--expires-at is in the past"));
    }
    Ok(ExpiryChange::Set(at))
}

/// `set --no-expiry` with no value given on a terminal: nothing to read, so the current
/// value is stored again without its expiry rather than prompting for a value the user
/// did not mean to change.
fn restores_current_value(args: &SetArgs) -> bool {
    args.no_expiry && args.value.as_ref().is_none_or(|v| v == "-") && input::stdin_is_terminal()
}

/// The labels a `set` asks for: `None` keeps the existing ones.
pub(crate) fn label_change(args: &mut SetArgs) -> Result<Option<Labels>, Failure> {
    Ok(if args.clear_labels {
        Some(Labels::empty())
    } else if args.labels.is_empty() {
        None
    } else {
        Some(context::labels(std::mem::take(&mut args.labels))?)
    })
}

pub fn set(ctx: &Ctx, mut args: SetArgs) -> Result<(), Failure> {
    if args.generate {
        return crate::commands::generated::set(ctx, args);
    }
    crate::commands::generated::refuse_options_without_generate(&args)?;
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let expires_at = expiry(&args)?;
    let restore = restores_current_value(&args);
    let labels = label_change(&mut args)?;
    let value = if restore {
        None
    } else {
        Some(input::value(
            args.value,
            name.as_str(),
            args.empty.allow_empty,
        )?)
    };
    let result = ctx.with_session(|client, session| {
        let value = match value {
            Some(value) => value,
            None => {
                client
                    .retrieve(session, &name, None)
                    .map_err(|err| name_missing(err, &name, &workspace, ""))?
                    .value
            }
        };
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
    if restore {
        return output::print(&format!(
            "removed the expiry of {name} in workspace {workspace}: version {} holds the same value\n",
            result.version
        ));
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
    // No clipboard: refused before the value is fetched at all.
    let clipboard = match args.clip {
        true => Some(clip::detect().ok_or_else(clip::no_tool)?),
        false => None,
    };
    let secret = ctx
        .retrieve_once(&workspace, &name, args.version)?
        .map_err(|err| match args.version {
            Some(version) => version_missing(err, &name, &workspace, version),
            None => name_missing(err, &name, &workspace, ""),
        })?;
    let value = secret.value.expose_secret();
    if let Some(tool) = clipboard {
        return clip::get_to_clipboard(ctx.json, tool, name.as_str(), value, args.clear_after);
    }
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
    if args.values || args.reveal {
        return crate::commands::values::ls(ctx, args);
    }
    let workspace = ctx.workspace()?;
    let filter = context::labels(args.labels)?;
    let (secrets, unfiltered) = ctx.with_session(|client, session| {
        let secrets = client.list_all(session, &filter)?;
        // How many the workspace holds, only when a filter matched none (one more LIST).
        let unfiltered = if secrets.is_empty() && !filter.is_empty() {
            Some(client.list_all(session, &Labels::empty())?.len())
        } else {
            None
        };
        Ok((secrets, unfiltered))
    })?;
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
    if let Some(total) = unfiltered {
        output::note(&format!(
            "no secret in workspace `{workspace}` carries {} (it holds {total} secret(s))",
            output::labels_text(&filter)
        ));
        return Ok(());
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
                s.expires_at.map_or_else(|| "-".to_owned(), rfc3339),
            ]
        })
        .collect();
    output::print_table(&["NAME", "VERSION", "LABELS", "UPDATED", "EXPIRES"], &rows)
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let ask = !(args.force || args.yes) && input::stdin_is_terminal();
    let result = ctx.with_session(|client, session| {
        if ask {
            crate::commands::confirm::delete(client, session, &name, &workspace)?;
        }
        Ok(client.delete(session, &name)?)
    })?;
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
    // Checked here, not by clap: its `requires` lets `--length` through when a value is
    // given, since the value conflicts with --generate.
    if args.length.is_some() && !args.generate {
        return Err(Failure::usage(
            "--length goes with --generate",
            "add --generate, or drop --length to store the value given",
        ));
    }
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let value = if args.generate {
        generate::alphanumeric(
            args.length
                .unwrap_or(crate::commands::generated::DEFAULT_LENGTH) as usize,
        )?
    } else {
        input::value(args.value, name.as_str(), args.empty.allow_empty)?
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
