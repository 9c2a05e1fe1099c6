//! `import --from pass [--store DIR]`: every entry of a `pass` password store, decrypted
//! with the user's own gpg (and gpg-agent, which may ask for the key's passphrase).
//!
//! - The store is `--store DIR`, else `$PASSWORD_STORE_DIR`, else `~/.password-store`;
//!   every `*.gpg` file below it is an entry (hidden directories such as `.git` are skipped).
//! - Names: the entry's path without `.gpg`, its `/` turned into `.` and every character a
//!   secret name cannot hold into `_` — `web/github.com` → `web.github.com`,
//!   `mail/me@example.org` → `mail.me_example.org` — all in the workspace of `-w`. With
//!   `--workspaces-from-dirs` the first directory is the workspace instead and the rest
//!   the name (`work/aws/root` → `aws.root` in workspace `work`); entries at the top of the
//!   store stay in `-w`'s. A path that still makes no valid name (it must start with a
//!   letter) or workspace, or two paths that make the same name, stop the import.
//! - Values: the entry's first line, without its newline — the password, which `pass -c`
//!   copies and most tools read; `--whole-entry` keeps the whole file byte for byte (extra
//!   lines such as `login:` or a note, and the final newline).
//! - Plaintext comes from gpg's standard output through a pipe into wiped buffers, never a
//!   file. Every entry is decrypted and checked before the first is stored: one that fails
//!   imports nothing.

use crate::cli::ImportArgs;
use crate::context;
use crate::fail::Failure;
use crate::input;
use crate::transfer::Entry;
use avp_client::{ErrorCode, SecretValue, StoreOptions, WorkspaceId};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `--store`, else `$PASSWORD_STORE_DIR`, else `~/.password-store` (as `pass` itself).
fn store_dir(args: &ImportArgs) -> Result<PathBuf, Failure> {
    if let Some(dir) = &args.store {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("PASSWORD_STORE_DIR").filter(|d| !d.is_empty()) {
        return Ok(dir.into());
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".password-store")),
        None => Err(Failure::usage(
            "cannot find the password store: HOME is not set",
            "give it with --store DIR",
        )),
    }
}

/// Every `*.gpg` file below `dir`, as paths relative to it, sorted.
fn entries_below(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let here = dir.join(&rel);
        let listing = fs::read_dir(&here)
            .map_err(|err| Failure::io(format!("cannot read {}", here.display()), err))?;
        for item in listing {
            let item =
                item.map_err(|err| Failure::io(format!("cannot read {}", here.display()), err))?;
            let file_name = item.file_name();
            if file_name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = item
                .file_type()
                .map_err(|err| Failure::io(format!("cannot read {}", here.display()), err))?;
            let child = rel.join(&file_name);
            if kind.is_dir() {
                pending.push(child);
            } else if child.extension().is_some_and(|e| e == "gpg") {
                found.push(child);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The secret name an entry's path maps to (module docs).
fn name_for(rel: &Path) -> String {
    let text = rel.with_extension("").to_string_lossy().into_owned();
    text.chars()
        .map(|c| match c {
            '/' => '.',
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') => c,
            _ => '_',
        })
        .collect()
}

/// With `--workspaces-from-dirs`: the first directory (if the entry is in one) and the path
/// below it.
fn split_workspace(rel: &Path) -> (Option<String>, PathBuf) {
    let mut components = rel.components();
    match (components.next(), components.as_path()) {
        (Some(first), rest) if !rest.as_os_str().is_empty() => (
            Some(first.as_os_str().to_string_lossy().into_owned()),
            rest.to_path_buf(),
        ),
        _ => (None, rel.to_path_buf()),
    }
}

/// Decrypts one entry with `gpg --batch --quiet --decrypt`, reading the plaintext from a
/// pipe into a wiped buffer.
fn decrypt(path: &Path, shown: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    let context = || format!("cannot run gpg for `{shown}`");
    let mut child = Command::new("gpg")
        .args(["--batch", "--quiet", "--decrypt", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Failure::io(context(), err))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // An entry larger than a secret can be is refused before more of it is read.
    let max = input::max_value_len();
    let plaintext = input::read_to_end(max, |buf| {
        loop {
            match stdout.read(buf) {
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other.map_err(|err| Failure::io(context(), err)),
            }
        }
    })?;
    let Some(plaintext) = plaintext else {
        // gpg is blocked writing the rest: stop it rather than wait for it.
        let _ = child.kill();
        let _ = child.wait();
        return Err(input::too_large(max + 1));
    };
    let mut errors = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut errors);
    }
    let status = child.wait().map_err(|err| Failure::io(context(), err))?;
    if !status.success() {
        let why = errors
            .lines()
            .last()
            .unwrap_or("no message")
            .trim()
            .to_owned();
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!("gpg cannot decrypt `{shown}` ({status}): {why}"),
            "check that your gpg key for the store is available (`pass show` that entry); nothing was imported",
        ));
    }
    Ok(plaintext)
}

/// The part of the plaintext that is kept (module docs).
fn value_of(plaintext: &[u8], whole: bool) -> SecretValue {
    if whole {
        return SecretValue::from_slice(plaintext);
    }
    let line = plaintext.split(|&b| b == b'\n').next().unwrap_or_default();
    SecretValue::from_slice(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Every entry of the store, decrypted and validated, ready to store.
pub fn read_store(args: &ImportArgs) -> Result<Vec<Entry>, Failure> {
    let dir = store_dir(args)?;
    let files = entries_below(&dir)?;
    if files.is_empty() {
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!("no .gpg entries in {}", dir.display()),
            "check the store's path (--store DIR or PASSWORD_STORE_DIR); nothing was imported",
        ));
    }
    let mut by_name: BTreeMap<(Option<String>, String), PathBuf> = BTreeMap::new();
    let mut names = Vec::with_capacity(files.len());
    for rel in &files {
        let shown = rel.with_extension("").display().to_string();
        let (workspace, below) = if args.workspaces_from_dirs {
            split_workspace(rel)
        } else {
            (None, rel.clone())
        };
        let workspace = workspace
            .map(|ws| {
                WorkspaceId::new(ws.clone()).map_err(|_| {
                    Failure::refused(
                        ErrorCode::InvalidWorkspace,
                        format!("the pass directory `{ws}` is not a valid workspace name"),
                        "rename it (`pass mv`) or import without --workspaces-from-dirs; nothing was imported",
                    )
                })
            })
            .transpose()?;
        let mapped = name_for(&below);
        let name = context::name(&mapped).map_err(|_| {
            Failure::refused(
                ErrorCode::InvalidName,
                format!("the pass entry `{shown}` makes the name `{mapped}`, which is not a valid secret name"),
                "rename the entry so it starts with a letter (`pass mv`); nothing was imported",
            )
        })?;
        let key = (workspace.as_ref().map(|w| w.to_string()), mapped.clone());
        if let Some(other) = by_name.insert(key, rel.clone()) {
            return Err(Failure::refused(
                ErrorCode::InvalidName,
                format!(
                    "the pass entries `{}` and `{shown}` both make the name `{mapped}`",
                    other.with_extension("").display()
                ),
                "rename one of them (`pass mv`); nothing was imported",
            ));
        }
        names.push((workspace, name, shown));
    }
    let mut entries = Vec::with_capacity(files.len());
    for (rel, (workspace, name, shown)) in files.iter().zip(names) {
        let plaintext = decrypt(&dir.join(rel), &shown)?;
        let value = value_of(&plaintext, args.whole_entry);
        if value.len() > input::max_value_len() {
            return Err(Failure::refused(
                ErrorCode::ValueTooLarge,
                format!(
                    "the pass entry `{shown}` holds {} bytes, more than the {} a secret can",
                    value.len(),
                    input::max_value_len()
                ),
                "import without it (move it out of the store); nothing was imported",
            ));
        }
        entries.push(Entry {
            workspace,
            name,
            value,
            options: StoreOptions::default(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_names_a_pass_user_recognises() {
        assert_eq!(name_for(Path::new("web/github.com.gpg")), "web.github.com");
        assert_eq!(
            name_for(Path::new("mail/me@example.org.gpg")),
            "mail.me_example.org"
        );
        assert_eq!(name_for(Path::new("a b/c.gpg")), "a_b.c");
    }

    #[test]
    fn the_first_directory_can_be_the_workspace() {
        assert_eq!(
            split_workspace(Path::new("work/aws/root.gpg")),
            (Some("work".into()), PathBuf::from("aws/root.gpg"))
        );
        assert_eq!(
            split_workspace(Path::new("top.gpg")),
            (None, PathBuf::from("top.gpg"))
        );
    }

    #[test]
    fn the_first_line_is_the_password() {
        let v = value_of(b"hunter2\r\nlogin: me\n", false);
        assert_eq!(v.expose_secret(), b"hunter2");
        let v = value_of(b"hunter2\nlogin: me\n", true);
        assert_eq!(v.expose_secret(), b"hunter2\nlogin: me\n");
    }
}
