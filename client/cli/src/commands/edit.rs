//! `avp edit NAME`: the value in `$VISUAL` or `$EDITOR` (else `vi`), as `pass edit` and
//! `git commit` do, without the value ever touching a disk.
//!
//! - The file is `NAME` in a fresh `avp-edit-<random>` directory, mode 0700, inside
//!   `$XDG_RUNTIME_DIR` — which must be a tmpfs (checked with statfs), so the value stays
//!   in memory. Otherwise avp refuses unless `--allow-disk`.
//! - Afterwards every file in that directory (the editor's swap and backup files too) is
//!   overwritten with zeros and removed, and the directory with them — whatever happens:
//!   the editor fails, avp gets SIGTERM or SIGHUP (it stops the editor first, then exits
//!   128+signal), an error, or a panic (a guard's `Drop`). Only SIGKILL can skip it, and
//!   then what is left is in memory, in a directory only you can enter.
//! - SIGINT and SIGQUIT (Ctrl-C, Ctrl-\) reach the editor, which decides; avp ignores them
//!   while the editor runs, as git does.
//! - Unchanged content stores nothing. One trailing newline, which editors add, is dropped
//!   unless the old value ended with one. A new name creates the secret. Labels and expiry
//!   are kept. If the secret changed while it was being edited, nothing is stored.

use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::input;
use crate::output::{self, print_json, rfc3339};
use avp_client::{ErrorCode, SecretValue, StoreOptions};
use clap::Args;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::statfs::{TMPFS_MAGIC, statfs};
use nix::unistd::Pid;
use serde_json::json;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The secret's name; a name that does not exist yet creates the secret
    pub name: String,

    /// Allow the temporary file on a disk-backed directory when $XDG_RUNTIME_DIR is unset
    /// or not a tmpfs (the value may then survive on the disk)
    #[arg(long)]
    pub allow_disk: bool,
}

/// How long a stopped editor gets to exit after SIGTERM before it is killed.
const EDITOR_GRACE: Duration = Duration::from_secs(5);

/// The signals avp handles itself while the editor runs.
const HANDLED: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGCHLD,
];

pub fn edit(ctx: &Ctx, args: EditArgs) -> Result<(), Failure> {
    let workspace = ctx.workspace()?;
    let name = context::name(&args.name)?;
    // Checked before the value is fetched, so a refusal costs nothing.
    let base = scratch_base(args.allow_disk)?;
    let before =
        ctx.with_session(
            |client, session| match client.retrieve(session, &name, None) {
                Ok(secret) => Ok(Some(secret)),
                Err(err) if err.code() == Some(ErrorCode::SecretNotFound) => Ok(None),
                Err(err) => Err(err.into()),
            },
        )?;
    let old: &[u8] = before.as_ref().map_or(&[], |s| s.value.expose_secret());

    // Blocked before the file exists, so no handled signal can end avp while it does.
    let signals = BlockedSignals::block()?;
    let scratch = Scratch::create(&base, name.as_str())?;
    scratch.write(old)?;
    let ended = run_editor(&scratch.file, &signals)?;
    let mut edited = match ended {
        Ended::Exited(status) if status.success() => scratch.read()?,
        Ended::Exited(status) => {
            let how = match status.code() {
                Some(code) => format!("the editor exited with status {code}"),
                None => "the editor was killed by a signal".to_owned(),
            };
            return Err(Failure::refused(
                ErrorCode::InvalidRequest,
                format!("{how}; nothing was stored and the temporary file was wiped"),
                "check $VISUAL / $EDITOR and run `avp edit` again",
            ));
        }
        Ended::Stopped(signal) => {
            drop(scratch);
            return Err(Failure::Interrupted {
                problem: format!(
                    "stopped by {signal}: the editor was ended, the temporary file wiped, \
                     nothing stored"
                ),
                status: 128 + signal as i32 as u8,
            });
        }
    };
    drop(scratch);
    // A signal that came after the editor ended is acted on now, before anything is stored.
    drop(signals);

    if !old.ends_with(b"\n") && edited.last() == Some(&b'\n') {
        edited.pop();
    }
    if before.is_some() && edited[..] == *old {
        return unchanged(ctx, &name, "unchanged; nothing was stored");
    }
    if edited.is_empty() {
        if before.is_none() {
            return unchanged(ctx, &name, "not created: the file was left empty");
        }
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!("the edited value of `{name}` is empty; nothing was stored"),
            format!("to delete the secret use `avp rm {name}`"),
        ));
    }
    let edited_version = before.as_ref().map(|s| s.version);
    drop(before);
    let value = SecretValue::from_slice(&edited);
    drop(edited);
    let result = ctx.with_session(|client, session| {
        let current = match client.history(session, &name) {
            Ok(history) => history.versions.last().map(|v| v.version),
            Err(err) if err.code() == Some(ErrorCode::SecretNotFound) => None,
            Err(err) => return Err(err.into()),
        };
        if current != edited_version {
            return Err(Failure::refused(
                ErrorCode::InvalidRequest,
                format!("`{name}` changed while it was being edited; nothing was stored"),
                "run `avp edit` again to edit its new value",
            ));
        }
        Ok(client.store(session, &name, value, StoreOptions::default())?)
    })?;
    if ctx.json {
        return print_json(&json!({
            "name": name.as_str(),
            "changed": true,
            "version": result.version,
            "created": result.created,
            "updated_at": rfc3339(result.updated_at),
        }));
    }
    let how = if result.created { "created" } else { "updated" };
    output::print(&format!(
        "{how} {name} in workspace {workspace}: version {}\n",
        result.version
    ))
}

/// Nothing stored, and that is fine.
fn unchanged(ctx: &Ctx, name: &avp_client::SecretName, why: &str) -> Result<(), Failure> {
    if ctx.json {
        return print_json(&json!({"name": name.as_str(), "changed": false}));
    }
    output::print(&format!("{name} {why}\n"))
}

/// The directory the scratch directory goes in: `$XDG_RUNTIME_DIR` if it is a tmpfs;
/// otherwise only with `--allow-disk` (then `$XDG_RUNTIME_DIR`, else the temp directory).
fn scratch_base(allow_disk: bool) -> Result<PathBuf, Failure> {
    let runtime = avp_client::socket_path::runtime_dir();
    let next = "use a login session whose $XDG_RUNTIME_DIR is a tmpfs, or pass --allow-disk \
                to accept that the value may be written to the disk";
    let Some(runtime) = runtime else {
        if allow_disk {
            return Ok(std::env::temp_dir());
        }
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            "$XDG_RUNTIME_DIR is not set (or not absolute), so there is no memory-backed \
             directory for the temporary file",
            next,
        ));
    };
    let on_tmpfs = statfs(&runtime)
        .map(|fs| fs.filesystem_type() == TMPFS_MAGIC)
        .map_err(|errno| {
            Failure::io(
                format!("cannot inspect {}", runtime.display()),
                errno.into(),
            )
        })?;
    if !on_tmpfs && !allow_disk {
        return Err(Failure::refused(
            ErrorCode::InvalidRequest,
            format!(
                "$XDG_RUNTIME_DIR ({}) is not a tmpfs: the temporary file could reach the disk",
                runtime.display()
            ),
            next,
        ));
    }
    Ok(runtime)
}

/// The private directory and the file the editor gets. Dropping it overwrites every file
/// in the directory with zeros and removes them and the directory.
struct Scratch {
    dir: PathBuf,
    file: PathBuf,
}

impl Scratch {
    fn create(base: &Path, name: &str) -> Result<Self, Failure> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|err| {
            Failure::io(
                "cannot read the operating system's random generator",
                io::Error::other(err.to_string()),
            )
        })?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("avp-edit-{suffix}"));
        let cannot = |what: &str, path: &Path, err| {
            Failure::io(format!("cannot {what} {}", path.display()), err)
        };
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|err| cannot("create", &dir, err))?;
        // From here on the guard removes the directory, whatever happens.
        let scratch = Self {
            file: dir.join(name),
            dir,
        };
        fs::set_permissions(&scratch.dir, fs::Permissions::from_mode(0o700))
            .map_err(|err| cannot("restrict", &scratch.dir, err))?;
        Ok(scratch)
    }

    /// Writes the value into a new 0600 file.
    fn write(&self, value: &[u8]) -> Result<(), Failure> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.file)
            .map_err(|err| Failure::io(format!("cannot create {}", self.file.display()), err))?;
        file.write_all(value)
            .map_err(|err| Failure::io(format!("cannot write {}", self.file.display()), err))
    }

    /// The file as the editor left it, in a wiped buffer.
    fn read(&self) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let cannot = |err| Failure::io(format!("cannot read {}", self.file.display()), err);
        let mut file = fs::File::open(&self.file).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len() as usize;
        // Room for the largest value and the newline an editor adds.
        if len > input::max_value_len() + 1 {
            return Err(input::too_large(len));
        }
        let max = input::max_value_len() + 1;
        // The file may have grown since its size was read: reading stops past `max`.
        input::read_to_end(max, |buf| file.read(buf).map_err(cannot))?
            .ok_or_else(|| input::too_large(max + 1))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(err) = wipe_dir(&self.dir) {
            output::warn(&format!(
                "could not wipe and remove {}: {err} — delete it yourself",
                self.dir.display()
            ));
        }
    }
}

/// Overwrites every file in `dir` with zeros, removes it, then removes `dir`.
fn wipe_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let kind = fs::symlink_metadata(&path)?;
        if kind.is_dir() {
            wipe_dir(&path)?;
            continue;
        }
        if kind.is_file() {
            let mut file = OpenOptions::new().write(true).open(&path)?;
            let zeros = [0u8; 4096];
            let mut left = kind.len();
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
        }
        fs::remove_file(&path)?;
    }
    fs::remove_dir(dir)
}

/// Blocks [`HANDLED`] for this (the only) thread, so they wait for [`run_editor`]; restores
/// the previous mask on drop, when a signal still pending takes its usual effect.
struct BlockedSignals {
    set: SigSet,
    previous: SigSet,
}

impl BlockedSignals {
    fn block() -> Result<Self, Failure> {
        let mut set = SigSet::empty();
        for signal in HANDLED {
            set.add(signal);
        }
        let previous = set
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .map_err(|errno| Failure::io("cannot block signals", errno.into()))?;
        Ok(Self { set, previous })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = self.previous.thread_set_mask();
    }
}

/// How the editor ended.
enum Ended {
    /// It exited (or died) by itself.
    Exited(ExitStatus),
    /// avp got this signal and stopped it.
    Stopped(Signal),
}

/// Runs the editor on `file` and waits for it, handling the blocked signals meanwhile. The
/// editor starts with an empty signal mask (std resets it in the child).
fn run_editor(file: &Path, signals: &BlockedSignals) -> Result<Ended, Failure> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|e| !e.is_empty())
        .map_or_else(|| "vi".to_owned(), |e| e.to_string_lossy().into_owned());
    // Through the shell, as git does, so `EDITOR="code --wait"` works; `exec` makes the
    // editor itself the child avp waits for and stops.
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {editor} \"$1\""))
        .arg("avp-edit")
        .arg(file)
        .spawn()
        .map_err(|err| Failure::io(format!("cannot start the editor `{editor}`"), err))?;
    loop {
        let signal = signals
            .set
            .wait()
            .map_err(|errno| Failure::io("cannot wait for the editor", errno.into()))?;
        match signal {
            Signal::SIGCHLD => {
                let status = child
                    .try_wait()
                    .map_err(|err| Failure::io("cannot wait for the editor", err))?;
                if let Some(status) = status {
                    return Ok(Ended::Exited(status));
                }
            }
            Signal::SIGTERM | Signal::SIGHUP => {
                stop(&mut child);
                return Ok(Ended::Stopped(signal));
            }
            // SIGINT, SIGQUIT: the editor got them too (same process group); it decides.
            _ => {}
        }
    }
}

/// Asks the editor to exit, and kills it if it has not after [`EDITOR_GRACE`].
fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + EDITOR_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
