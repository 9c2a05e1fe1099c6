//! File-system helpers shared by the socket and the vault: private directories created
//! race-free and checked, durable atomic replacement, directory fsync, exclusive lock files.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

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

/// Replaces `path` with `contents` durably: a temp file in the same directory, written and
/// fsync'd, renamed over, the directory fsync'd. A crash leaves the old or the new file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// The temp name used while replacing `path`.
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a whole file that must not exceed `max` bytes (a hostile file cannot make us
/// allocate more).
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file larger than expected",
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// An exclusive advisory lock held for the life of the value (`flock`, released by the
/// kernel when the process dies, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
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
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held(text.trim().parse().ok()));
            }
            Err(fs::TryLockError::Error(err)) => return Err(err.into()),
        }
        file.set_len(0)?;
        file.write_all(std::process::id().to_string().as_bytes())?;
        Ok(Self { _file: file })
    }
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
        assert!(!tmp_path(&path).exists());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(read_bounded(&path, 2).is_err());
    }
}
