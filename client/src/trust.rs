//! Is the socket our own agent's? Checked after `connect` and before the first byte is
//! sent, by the blocking and the async connection alike.
//!
//! Threat: without `XDG_RUNTIME_DIR` the socket is `/tmp/avp-$UID/agent.sock`, and another
//! user can create that directory first and serve a fake agent in it. A client that talked
//! to it would hand over the passphrase (`unlock`), the values it stores (`set`), and take
//! the environment `avp run` builds from its answers. So, whatever path was given (the
//! default, `AVP_SOCK` or `--socket`):
//! - the socket's directory must be owned by our effective uid and not writable by group or
//!   others (anyone who can write it can replace the socket);
//! - the process serving the connection (`SO_PEERCRED`, fixed by the kernel at `connect`)
//!   must run as our effective uid.
//!
//! The peer check is the one that cannot be fooled; the directory check refuses a setup
//! that could be swapped under us even when the current peer is genuine.

use crate::error::{Error, Result, Untrusted};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Group- and other-write permission bits.
const GROUP_OTHER_WRITE: u32 = 0o022;

/// Checks the socket's directory and the connected peer; nothing has been sent yet.
pub(crate) fn check(socket: &Path, stream: &impl AsFd) -> Result<()> {
    let own = nix::unistd::geteuid().as_raw();
    check_directory(socket, own)?;
    check_peer(socket, stream, own)
}

fn untrusted(socket: &Path, reason: Untrusted) -> Error {
    Error::UntrustedSocket {
        socket: socket.to_path_buf(),
        reason,
    }
}

/// The socket's directory: owned by `own`, no group/other write. Follows symlinks, so the
/// directory judged is the one the socket really is in.
fn check_directory(socket: &Path, own: u32) -> Result<()> {
    let dir = match socket.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir).map_err(|source| Error::Io {
        context: format!("cannot check the socket's directory {}", dir.display()),
        source,
    })?;
    let dir = dir.to_path_buf();
    if meta.uid() != own {
        return Err(untrusted(
            socket,
            Untrusted::DirectoryOwner {
                dir,
                uid: meta.uid(),
                own,
            },
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OTHER_WRITE != 0 {
        return Err(untrusted(
            socket,
            Untrusted::DirectoryWritable { dir, mode },
        ));
    }
    Ok(())
}

/// The uid of the process that serves the connection.
fn check_peer(socket: &Path, stream: &impl AsFd, own: u32) -> Result<()> {
    let creds = getsockopt(stream, PeerCredentials).map_err(|errno| Error::Io {
        context: format!("cannot read the peer credentials of {}", socket.display()),
        source: errno.into(),
    })?;
    if creds.uid() != own {
        return Err(untrusted(
            socket,
            Untrusted::PeerUid {
                uid: creds.uid(),
                own,
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn own() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn a_private_directory_and_our_own_peer_pass() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        let stream = UnixStream::connect(&socket).unwrap();
        check(&socket, &stream).unwrap();
    }

    #[test]
    fn group_or_other_write_on_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        for mode in [0o777, 0o770, 0o702, 0o1777] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let err = check_directory(&socket, own()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::UntrustedSocket {
                        reason: Untrusted::DirectoryWritable { mode: m, .. },
                        ..
                    } if m == mode
                ),
                "{mode:o}: {err:?}"
            );
        }
        for mode in [0o700, 0o755, 0o711] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            check_directory(&socket, own()).unwrap();
        }
    }

    #[test]
    fn a_directory_of_another_uid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let err = check_directory(&socket, own() + 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UntrustedSocket {
                    reason: Untrusted::DirectoryOwner { uid, .. },
                    ..
                } if uid == own()
            ),
            "{err:?}"
        );
    }
}
