//! `import` and `export`: bulk in and out through dotenv or JSON files.
//!
//! An import is checked whole before the first write: a file with any bad entry imports
//! nothing and the error names the entry's line. When a name appears twice the later entry
//! wins, as in a shell. Imported secrets keep their existing labels.
//!
//! An export file is created with mode 0600 (or truncated and set to 0600 if it exists).

use crate::cli::{ExportArgs, Format, ImportArgs, Source};
use crate::context::Ctx;
use crate::fail::Failure;
use crate::output::{self, print_json};
use crate::{dotenv, import_pass, import_sdk, input, jsonfile, run};
use avp_client::{ErrorCode, Labels, SecretName, SecretValue, StoreOptions, WorkspaceId};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The largest file or stream `import` reads: room for 1,000 secrets at the protocol's
/// 65,536-byte value limit. The whole input is held (wiped afterwards) to be checked before
/// the first write, so an endless or huge stream must stop somewhere.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// `VALUE_TOO_LARGE` for an input past [`MAX_IMPORT_BYTES`]; nothing was imported.
fn import_too_large(path: &Path) -> Failure {
    Failure::refused(
        ErrorCode::ValueTooLarge,
        format!(
            "{} is larger than {} MiB, the most `avp import` reads",
            path.display(),
            MAX_IMPORT_BYTES / (1024 * 1024)
        ),
        "split it into smaller files and import each; nothing was imported",
    )
}

/// Reads the whole file (or standard input for `-`) into a wiped buffer, sized once for a
/// regular file; at most [`MAX_IMPORT_BYTES`].
fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if path == Path::new("-") {
        return input::all_of_stdin(MAX_IMPORT_BYTES)?.ok_or_else(|| import_too_large(path));
    }
    let context = || format!("cannot read {}", path.display());
    let mut file = fs::File::open(path).map_err(|err| Failure::io(context(), err))?;
    let metadata = file.metadata().map_err(|err| Failure::io(context(), err))?;
    if !metadata.is_file() {
        // A pipe, FIFO or `<(…)` has no stable size: read it to its end instead.
        return input::read_to_end(MAX_IMPORT_BYTES, |buf| {
            loop {
                match file.read(buf) {
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    other => return other.map_err(|err| Failure::io(context(), err)),
                }
            }
        })?
        .ok_or_else(|| import_too_large(path));
    }
    let len = metadata.len();
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_IMPORT_BYTES {
        return Err(import_too_large(path));
    }
    // One byte more than the size, so a file that grows meanwhile is noticed, not cut.
    let mut buf = Zeroizing::new(vec![0u8; len.saturating_add(1)]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Err(Failure::io(
                context(),
                std::io::Error::other("the file changed while it was read"),
            ));
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(Failure::io(context(), err)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

fn parse(
    bytes: &[u8],
    format: Format,
    path: &Path,
) -> Result<BTreeMap<SecretName, SecretValue>, Failure> {
    let max = input::max_value_len();
    let (line, code, reason) = match format {
        Format::Dotenv => match dotenv::parse(bytes, max) {
            Ok(entries) => return Ok(entries.into_iter().map(|e| (e.name, e.value)).collect()),
            Err(err) => (err.line, err.code, err.reason.to_owned()),
        },
        Format::Json => match jsonfile::parse(bytes, max) {
            Ok(entries) => return Ok(entries.into_iter().collect()),
            Err(err) => (err.line, err.code, err.reason),
        },
    };
    Err(Failure::refused(
        code,
        format!("{}, line {line}: {reason}", path.display()),
        "fix the file and import it again; nothing was imported",
    ))
}

/// One secret to import: the options say what happens to its labels and expiry.
#[derive(Debug)]
pub struct Entry {
    /// `None`: the workspace of `-w`.
    pub workspace: Option<WorkspaceId>,
    pub name: SecretName,
    pub value: SecretValue,
    pub options: StoreOptions,
}

/// Refuses the `import` flags that belong to another `--from` than the one given.
fn check_flags(args: &ImportArgs) -> Result<(), Failure> {
    let pass = args.from == Some(Source::Pass);
    let sdk = args.from == Some(Source::AvpSdk);
    let misplaced = [
        (args.store.is_some() && !pass, "--store", "--from pass"),
        (args.whole_entry && !pass, "--whole-entry", "--from pass"),
        (
            args.workspaces_from_dirs && !pass,
            "--workspaces-from-dirs",
            "--from pass",
        ),
        (
            args.password_stdin && !sdk,
            "--password-stdin",
            "--from avp-sdk",
        ),
        (
            args.file.is_some() && pass,
            "FILE",
            "a file source (--from pass reads --store DIR)",
        ),
    ];
    match misplaced.into_iter().find(|(wrong, ..)| *wrong) {
        Some((_, flag, with)) => Err(Failure::usage(
            format!("{flag} only goes with {with}"),
            "see `avp import --help`",
        )),
        None => Ok(()),
    }
}

pub fn import(ctx: &Ctx, args: ImportArgs) -> Result<(), Failure> {
    ctx.workspace()?;
    check_flags(&args)?;
    let entries = match args.from {
        Some(Source::Pass) => import_pass::read_store(&args)?,
        Some(Source::AvpSdk) => import_sdk::read_vault(ctx, &args)?,
        None => {
            let path = args.file.as_deref().unwrap_or(Path::new("-"));
            let bytes = read_file(path)?;
            let entries = parse(&bytes, args.format, path)?;
            entries
                .into_iter()
                .map(|(name, value)| Entry {
                    workspace: None,
                    name,
                    value,
                    options: StoreOptions::default(),
                })
                .collect()
        }
    };
    store_all(ctx, entries)
}

/// Stores every entry (already validated whole), one session per workspace, and reports.
pub fn store_all(ctx: &Ctx, entries: Vec<Entry>) -> Result<(), Failure> {
    let default = ctx.workspace()?;
    let total = entries.len();
    let mut by_workspace: BTreeMap<WorkspaceId, Vec<Entry>> = BTreeMap::new();
    for entry in entries {
        let ws = entry.workspace.clone().unwrap_or_else(|| default.clone());
        by_workspace.entry(ws).or_default().push(entry);
    }
    let mut stored = Vec::with_capacity(total);
    for (workspace, entries) in &mut by_workspace {
        ctx.with_session_in(workspace, |client, session| {
            for Entry {
                name,
                value,
                options,
                ..
            } in std::mem::take(entries)
            {
                match client.store(session, &name, value, options) {
                    Ok(result) => stored.push((workspace.clone(), name, result)),
                    Err(err) if stored.is_empty() => return Err(Failure::Client(err)),
                    Err(err) => {
                        let (problem, next) = err.problem_and_next_step();
                        return Err(Failure::Refused {
                            code: err.code().unwrap_or(ErrorCode::BackendError),
                            problem: format!(
                                "import stopped at `{name}` after {} of {total} secrets: {problem}",
                                stored.len()
                            ),
                            next: next.unwrap_or_else(|| "fix the problem and import again".into()),
                        });
                    }
                }
            }
            Ok(())
        })?;
    }
    if ctx.json {
        let secrets: Vec<_> = stored
            .iter()
            .map(|(ws, name, r)| {
                json!({"name": name.as_str(), "version": r.version, "created": r.created,
                       "workspace": ws.as_str()})
            })
            .collect();
        return print_json(&json!({"imported": stored.len(), "secrets": secrets}));
    }
    let workspaces: Vec<&str> = by_workspace.keys().map(WorkspaceId::as_str).collect();
    let into = match workspaces.as_slice() {
        [one] => format!("workspace {one}"),
        many => format!("workspaces {}", many.join(", ")),
    };
    output::print(&format!(
        "imported {} secret(s) into {into}\n",
        stored.len()
    ))
}

/// Creates or truncates `path` with mode 0600 (also when it already existed).
fn create_private(path: &Path) -> Result<fs::File, Failure> {
    let context = || format!("cannot write {}", path.display());
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| Failure::io(context(), err))?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|err| Failure::io(context(), err))?;
    Ok(file)
}

/// What a dotenv export cannot carry safely, refused before anything is written, naming
/// the secret (never the value): a NUL byte, which no shell variable or environment can
/// hold, and a name that is not a shell variable name (`.` and `-` are valid in secret
/// names), which `set -a; . ./file` would run as a command word instead of assigning.
fn refuse_unwritable(entries: &[(SecretName, SecretValue)]) -> Result<(), Failure> {
    let next =
        "export with `--format json`, which keeps any name and any bytes; nothing was exported";
    if let Some((name, _)) = entries
        .iter()
        .find(|(name, _)| !run::is_env_name(name.as_str()))
    {
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!("`{name}` is not a shell variable name, so a dotenv file cannot carry it"),
            next,
        ));
    }
    match entries
        .iter()
        .find(|(_, value)| !dotenv::can_write(value.expose_secret()))
    {
        Some((name, _)) => Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!("`{name}` holds a NUL byte, which a dotenv file cannot carry"),
            next,
        )),
        None => Ok(()),
    }
}

/// The format of an export. Under `--json` standard output carries one JSON document, so
/// an export to standard output is the JSON format and asking for dotenv there is a usage
/// error; with `-o FILE` the file may be either, and `--json` prints the summary.
fn export_format(ctx: &Ctx, args: &ExportArgs) -> Result<Format, Failure> {
    match (args.format, ctx.json && args.output.is_none()) {
        (Some(Format::Dotenv), true) => Err(Failure::usage(
            "--json prints JSON on standard output, so it cannot carry a dotenv export",
            "drop --json, or write the dotenv file with -o FILE, or use --format json",
        )),
        (_, true) => Ok(Format::Json),
        (format, false) => Ok(format.unwrap_or(Format::Dotenv)),
    }
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> Result<(), Failure> {
    ctx.workspace()?;
    let format = export_format(ctx, &args)?;
    let entries = ctx.with_session(|client, session| {
        let names = client.list_all(session, &Labels::empty())?;
        let mut entries = Vec::with_capacity(names.len());
        for meta in names {
            let secret = client.retrieve(session, &meta.name, None)?;
            entries.push((secret.name, secret.value));
        }
        Ok(entries)
    })?;
    if matches!(format, Format::Dotenv) {
        refuse_unwritable(&entries)?;
    }
    let text = output::render_secret(|out| match format {
        Format::Dotenv => entries
            .iter()
            .try_for_each(|(name, value)| dotenv::write_entry(out, name, value.expose_secret())),
        Format::Json => jsonfile::write_all(out, &entries),
    })?;
    let Some(path) = &args.output else {
        // The export itself is the output (JSON under --json); no second document.
        return output::write_secret(&text);
    };
    let mut file = create_private(path)?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|err| Failure::io(format!("cannot write {}", path.display()), err))?;
    if ctx.json {
        return print_json(&json!({"exported": entries.len(), "path": path.display().to_string()}));
    }
    output::note(&format!(
        "exported {} secret(s) to {}",
        entries.len(),
        path.display()
    ));
    Ok(())
}
