//! The listening socket (PROTOCOL.md §2.1, §2.2; README "Running the agent"): adopted from systemd socket activation, or bound
//! by the agent in a private directory.
//!
//! Binding rules: the socket's directory is created 0700 race-free and re-checked; a
//! directory owned by someone else or open to group/other is refused. A lock file beside the
//! socket makes two agents starting at once on one path fail cleanly instead of unlinking
//! each other's sockets. A socket file that answers belongs to a running agent: refuse. One
//! that does not answer is stale: replace it. The socket is 0600.
//!
//! A socket the agent bound is removed when it exits — unless the file at that path is no
//! longer the one it bound — and so is its lock file. A socket systemd passed in is never
//! unlinked.

use crate::fsutil::{self, LockError, LockFile};
use anyhow::{Context, Result, bail};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A socket the agent bound itself, identified so exit removes only that file.
#[derive(Debug)]
struct Owned {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// `<socket>.lock`, held for the agent's life and unlinked at a clean exit.
    lock: LockFile,
}

/// The listening socket and how it came to be.
#[derive(Debug)]
pub struct AgentSocket {
    /// The listener, non-blocking: the connection threads wait on it with a wake pipe (see `server`).
    pub listener: UnixListener,
    /// The path clients use.
    pub path: PathBuf,
    owned: Option<Owned>,
}

impl AgentSocket {
    /// Adopts the systemd socket if one was passed, else binds `path`.
    pub fn open(path: &Path) -> Result<Self> {
        match inherited()? {
            Some(fd) => Self::adopt(fd, path),
            None => Self::bind(path),
        }
    }

    fn adopt(fd: OwnedFd, path: &Path) -> Result<Self> {
        use nix::sys::socket::{SockType, getsockopt, sockopt};
        let is_listening = getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false);
        let is_stream = getsockopt(&fd, sockopt::SockType).is_ok_and(|t| t == SockType::Stream);
        let listener = UnixListener::from(fd);
        // std refuses to read the address of a socket that is not AF_UNIX.
        let is_unix = listener.local_addr().is_ok();
        if !(is_listening && is_stream && is_unix) {
            bail!("the socket passed by systemd (fd 3) is not a listening Unix stream socket");
        }
        listener.set_nonblocking(true)?;
        // The path clients use is the one systemd bound; report it when it is known.
        let bound = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf());
        tracing::info!(socket = %bound.display(), "adopted the socket from systemd");
        Ok(Self {
            listener,
            path: bound,
            owned: None,
        })
    }

    fn bind(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .context("the socket path has no directory")?;
        fsutil::ensure_private_dir(dir, "socket directory")?;
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock = LockFile::acquire(&dir.join(lock_name)).map_err(|err| match err {
            LockError::Held(pid) => anyhow::anyhow!(
                "another avp-agent{} is already serving {}: use it, stop it, or pass --socket",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                path.display()
            ),
            LockError::Io(err) => anyhow::anyhow!("cannot lock the socket directory: {err}"),
        })?;
        remove_stale(path)?;
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        listener.set_nonblocking(true)?;
        let meta = fs::symlink_metadata(path)?;
        tracing::info!(socket = %path.display(), "listening");
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            owned: Some(Owned {
                path: path.to_path_buf(),
                dev: meta.dev(),
                ino: meta.ino(),
                lock,
            }),
        })
    }

    /// Removes the socket file if this agent bound it and it is still the same file, then
    /// its lock file — still holding the lock, so an agent starting meanwhile either fails
    /// on the lock or takes a fresh one (see [`LockFile::acquire`]), never both.
    pub fn remove(&self) {
        let Some(owned) = &self.owned else {
            return;
        };
        match fs::symlink_metadata(&owned.path) {
            Ok(meta) if meta.dev() == owned.dev && meta.ino() == owned.ino => {
                if let Err(err) = fs::remove_file(&owned.path) {
                    tracing::warn!(%err, "cannot remove the socket");
                }
            }
            _ => tracing::debug!("the socket file was replaced; leaving it"),
        }
        owned.lock.remove();
    }
}

/// A file at `path` that is a socket nobody answers on is removed; a live socket or any
/// other kind of file is refused.
fn remove_stale(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).context("cannot inspect the socket path"),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket: remove it or pass --socket",
            path.display()
        );
    }
    match UnixStream::connect(path) {
        Ok(_) => bail!(
            "an agent already answers on {}: use it (export AVP_SOCK={}) or stop it first",
            path.display(),
            path.display()
        ),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "replacing a stale socket");
            fs::remove_file(path).context("cannot remove the stale socket")
        }
        Err(err) => Err(err).with_context(|| format!("cannot probe {}", path.display())),
    }
}

/// The socket systemd passed, if `LISTEN_FDS` is meant for this process.
///
/// `LISTEN_FDS` without a matching `LISTEN_PID` is refused rather than ignored: it means
/// the environment was copied to the wrong process, and silently binding a second socket
/// would split clients between two agents.
fn inherited() -> Result<Option<OwnedFd>> {
    let Some(fds) = std::env::var_os("LISTEN_FDS") else {
        return Ok(None);
    };
    let pid = std::env::var("LISTEN_PID").unwrap_or_default();
    let ours = std::process::id().to_string();
    if pid != ours {
        bail!(
            "LISTEN_FDS is set but LISTEN_PID ({}) is not this process ({ours}): refusing the \
             inherited socket; start avp-agent through its systemd unit or unset LISTEN_FDS",
            if pid.is_empty() { "unset" } else { &pid }
        );
    }
    if fds != "1" {
        bail!("systemd passed {fds:?} sockets; avp-agent.socket must pass exactly one");
    }
    // Marks the fd close-on-exec and clears the variables so children do not see them.
    let mut passed = sd_notify::listen_fds().context("reading LISTEN_FDS")?;
    let fd = passed.next().context("LISTEN_FDS named no socket")?;
    Ok(Some(crate::harden::adopt_inherited_fd(fd)))
}
