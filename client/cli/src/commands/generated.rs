//! `avp set NAME --generate [--length N] [--charset C] [--print] [--force]`: a new secret
//! with a random value. Like `pass generate`, it refuses to replace an existing secret
//! unless `--force` (a generated value is never what you meant to type over a real one),
//! and the value is printed only with `--print`.

use crate::cli::SetArgs;
use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::generate::{self, Charset};
use crate::input;
use crate::output::{self, rfc3339};
use crate::secrets::{expiry, label_change};
use avp_client::{ErrorCode, SecretValue, StoreOptions};
use serde_json::json;

/// Default length of a generated value (`set` and `rotate`): 32 alphanumerics are about
/// 190 bits.
pub const DEFAULT_LENGTH: u32 = 32;

/// `--length`, `--charset`, `--print` and `--force` mean something only with `--generate`
/// (checked here: clap's `requires` does not catch them on this command).
pub fn refuse_options_without_generate(args: &SetArgs) -> Result<(), Failure> {
    if args.length.is_some() || args.charset.is_some() || args.print || args.force {
        return Err(Failure::usage(
            "--length, --charset, --print and --force go with --generate",
            "add --generate, or drop them to store the value given",
        ));
    }
    Ok(())
}

pub fn set(ctx: &Ctx, mut args: SetArgs) -> Result<(), Failure> {
    let length = args.length.unwrap_or(DEFAULT_LENGTH);
    let charset = args.charset.unwrap_or(Charset::Alnum);
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    let expires_at = expiry(&args)?;
    let labels = label_change(&mut args)?;
    let value = generate::from_alphabet(&charset.alphabet(), length as usize)?;
    if value.len() > input::max_value_len() {
        return Err(input::too_large(value.len()));
    }
    // Kept only when it is to be printed; wiped on drop.
    let shown = args
        .print
        .then(|| SecretValue::from_slice(value.expose_secret()));
    let result = ctx.with_session(|client, session| {
        if !args.force && super::exists(client, session, &name)? {
            return Err(Failure::refused(
                ErrorCode::InvalidRequest,
                format!("`{name}` already exists in workspace `{workspace}`"),
                "pass --force to replace its value with a generated one (the old value stays \
                 in `avp history`), or choose another name",
            ));
        }
        let options = StoreOptions { labels, expires_at };
        Ok(client.store(session, &name, value, options)?)
    })?;
    let charset = charset.name();
    if ctx.json {
        let doc = json!({
            "name": name.as_str(),
            "version": result.version,
            "created": result.created,
            "created_at": rfc3339(result.created_at),
            "updated_at": rfc3339(result.updated_at),
            "generated": {"length": length, "charset": charset},
        })
        .to_string();
        let Some(shown) = shown else {
            return output::print(&format!("{doc}\n"));
        };
        // The value joins the document in a wiped buffer, never in a `String`.
        let bytes = output::render_secret(|out| {
            out.write_all(&doc.as_bytes()[..doc.len() - 1])?;
            out.write_all(b",")?;
            output::write_value_fields(out, shown.expose_secret())?;
            out.write_all(b"}\n")
        })?;
        return output::write_secret(&bytes);
    }
    let how = if result.created {
        "created"
    } else {
        "replaced"
    };
    let line = format!(
        "{how} {name} in workspace {workspace} with {} random {charset} characters: version {}",
        length, result.version
    );
    let Some(shown) = shown else {
        return output::print(&format!("{line} — read it with `avp get {name}`\n"));
    };
    // stdout carries the value alone (as `avp get` prints it), the report goes to stderr.
    output::note(&line);
    let newline = output::stdout_is_terminal();
    let bytes = output::render_secret(|out| {
        out.write_all(shown.expose_secret())?;
        if newline {
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;
    output::write_secret(&bytes)
}
