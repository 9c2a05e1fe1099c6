//! File-system helpers shared by the socket and the vault: private directories created
//! race-free and checked, durable atomic replacement through unique temp files, opening
//! regular files only, directory fsync, exclusive lock files.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Makes sure `dir` is a private directory of ours: created 0700 if absent (its parents
/// too, 0700), then checked without following a symlink: a directory, owned by this user,
/// with no group or other permission bits. A directory that fails the check is refused,
/// never "fixed": someone else may already hold it open.
pub fn ensure_private_dir(dir: &Path, what: &str) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // We made it; make sure the mode is exactly 0700 whatever the umask was.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot chmod {}", dir.display()))?;
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot create the {what} {}", dir.display()));
        }
    }
    check_private_dir(dir, what)
}

/// Refuses a path that is not a directory owned by us with mode `0700` or stricter.
pub fn check_private_dir(dir: &Path, what: &str) -> Result<()> {
    let meta = fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect the {what} {}", dir.display()))?;
    if !meta.file_type().is_dir() {
        bail!(
            "the {what} {} is not a directory (a symlink or a file is refused)",
            dir.display()
        );
    }
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid {
        bail!(
            "the {what} {} belongs to uid {}, not to you (uid {uid}): refusing to use it",
            dir.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the {what} {} is accessible to other users (mode {mode:o}): run `chmod 700 {}` \
             and start again",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Flushes a directory's entries (a create, rename or unlink in it) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `contents` durably: a fresh temp file in the same directory (see
/// [`create_temp`]), written and fsync'd, renamed over, the directory fsync'd. A crash leaves
/// the old or the new file (and perhaps a stray temp, which nothing reads). On failure the
/// temp file is removed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (mut file, tmp) = create_temp(path)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path)
        });
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    sync_dir(dir)
}

/// The prefix of every temp name used while replacing `path`: `<name>.tmp.`.
fn tmp_prefix(path: &Path) -> std::ffi::OsString {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp.");
    name
}

/// Creates a new, empty 0600 temp file beside `path`, named `<name>.tmp.<random>`, with
/// `O_CREAT | O_EXCL | O_NOFOLLOW`: a file or symlink planted under a predictable name is
/// never opened, let alone truncated or written through. Returns the file and its path.
pub fn create_temp(path: &Path) -> io::Result<(File, PathBuf)> {
    for _ in 0..8 {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random)
            .map_err(|_| io::Error::other("the OS random generator failed"))?;
        let mut name = tmp_prefix(path);
        name.push(u64::from_be_bytes(random).to_string());
        let tmp = path.with_file_name(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "cannot find an unused temp file name",
    ))
}

/// Removes the temp files a crash left beside `path` (`<name>.tmp.*`, and the older fixed
/// `<name>.tmp`). Only call this while nothing can be writing one (the directory's lock is
/// held and no replacement is under way). Unlinking never follows a symlink.
pub fn remove_stale_temps(path: &Path) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = tmp_prefix(path);
    let prefix = prefix.as_encoded_bytes();
    let fixed = &prefix[..prefix.len() - 1];
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if (name.starts_with(prefix) || name == fixed)
            && let Err(err) = fs::remove_file(entry.path())
        {
            tracing::warn!(%err, file = %entry.path().display(), "cannot remove a stale temp file");
        }
    }
}

/// The file is a symlink, FIFO, socket, device or directory where a regular file of ours
/// belongs.
#[derive(Debug, thiserror::Error)]
#[error("not a regular file")]
pub struct NotRegularFile;

/// True when `err` says a path is not a regular file ([`open_regular`]'s refusal).
pub fn is_not_regular(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<NotRegularFile>())
}

/// Opens an existing regular file for reading (and writing if `write`) without following
/// a symlink and without blocking: a FIFO would otherwise hang the open or the read for
/// ever, a symlink to `/dev/zero` would read until memory ran out. Anything but a regular
/// file is refused with [`NotRegularFile`].
pub fn open_regular(path: &Path, write: bool) -> io::Result<File> {
    // O_NONBLOCK makes opening a FIFO return at once; on a regular file it changes nothing.
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            // A symlink (O_NOFOLLOW), or a directory opened for writing.
            Some(nix::libc::ELOOP | nix::libc::EISDIR) => io::Error::other(NotRegularFile),
            _ => err,
        })?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::other(NotRegularFile));
    }
    Ok(file)
}

/// Reads a whole regular file (see [`open_regular`]) that must not exceed `max` bytes: a
/// hostile file cannot make us allocate more, nor read past the size it had when opened.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path, false)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file larger than expected",
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// An exclusive advisory lock held for the life of the value (`flock`, released by the
/// kernel when the process dies, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct LockFile {
    /// Holds the `flock`; closing it releases the lock.
    _file: File,
    path: PathBuf,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it; their pid, if they wrote it.
    #[error("held by another process{}", .0.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held(Option<u32>),
    /// The lock file could not be opened.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl LockFile {
    /// Takes the lock at `path` without waiting, and records our pid in it.
    ///
    /// The file is opened without following a symlink and without truncating, and must be
    /// a regular file of ours with one link: a planted symlink or hard link is refused, so
    /// writing the pid can never clobber another file. The lock file may be unlinked by
    /// its holder at exit ([`LockFile::remove`]); a lock taken on a file that is no longer
    /// at `path` is dropped and taken again, so two agents can never both hold it.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
                .mode(0o600)
                .open(path)
                .map_err(|err| match err.raw_os_error() {
                    Some(nix::libc::ELOOP | nix::libc::EISDIR) => not_our_lock_file(path),
                    _ => err,
                })?;
            let meta = file.metadata()?;
            let uid = nix::unistd::getuid().as_raw();
            if !meta.file_type().is_file() || meta.nlink() != 1 || meta.uid() != uid {
                return Err(not_our_lock_file(path).into());
            }
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::Held(text.trim().parse().ok()));
                }
                Err(fs::TryLockError::Error(err)) => return Err(err.into()),
            }
            // The previous holder may have unlinked the file between our open and our lock.
            match fs::symlink_metadata(path) {
                Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            }
            file.set_len(0)?;
            file.write_all(std::process::id().to_string().as_bytes())?;
            return Ok(Self {
                _file: file,
                path: path.to_path_buf(),
            });
        }
    }

    /// Unlinks the lock file while still holding the lock (so no other process can hold
    /// it at the same time: one that opened the old file sees it gone and starts over).
    /// Called at a clean exit; the lock itself is released when the value is dropped.
    pub fn remove(&self) {
        if let Err(err) = fs::remove_file(&self.path) {
            tracing::warn!(%err, path = %self.path.display(), "cannot remove the lock file");
        }
    }
}

fn not_our_lock_file(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is not a lock file of ours (a symlink, a hard link, a directory or another \
         user's file): remove it and start again",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_created_0700_and_open_ones_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        ensure_private_dir(&dir, "test directory").unwrap();
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        let err = ensure_private_dir(&dir, "test directory").unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check_private_dir(&link, "test directory").is_err());
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holder_pid() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("lock");
        let first = LockFile::acquire(&path).unwrap();
        match LockFile::acquire(&path) {
            Err(LockError::Held(Some(pid))) => assert_eq!(pid, std::process::id()),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        LockFile::acquire(&path).unwrap();
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(base.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temp file is left");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(read_bounded(&path, 2).is_err());
    }
}
