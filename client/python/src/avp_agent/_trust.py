"""Is the socket our own agent's? Checked after ``connect`` and before the first byte is sent
(PROTOCOL.md §2.3), by the blocking and the asyncio client alike — the same two checks as the
Rust client's ``trust.rs``:

- the socket's directory is owned by our effective uid and not writable by group or others
  (anyone who can write it can replace the socket with their own);
- the process serving the connection runs as our effective uid (``SO_PEERCRED``, fixed by the
  kernel at ``connect``, so it cannot be faked).

Without ``XDG_RUNTIME_DIR`` the socket is ``/tmp/avp-$UID/agent.sock``: another user can
create that directory first and serve a fake agent that would collect passphrases and values.
"""

import os
import socket as _socket
import stat
import struct

from .errors import UntrustedSocketError

_GROUP_OTHER_WRITE = 0o022
# struct ucred { pid_t pid; uid_t uid; gid_t gid; }
_UCRED = struct.Struct("3i")


def check(path: str, sock: _socket.socket) -> None:
    """Raises :class:`UntrustedSocketError` unless both checks pass; nothing has been sent."""
    own = os.geteuid()
    check_directory(path, own)
    check_peer(path, sock, own)


def check_directory(path: str, own: int) -> None:
    """The socket's directory (symlinks followed, as the kernel follows them to connect)."""
    directory = os.path.dirname(path) or "."
    meta = os.stat(directory)
    if meta.st_uid != own:
        raise UntrustedSocketError(
            path,
            "directory_owner",
            f"the socket {path} is in {directory}, owned by uid {meta.st_uid}, not you "
            f"(uid {own}): something may be impersonating the agent",
        )
    mode = stat.S_IMODE(meta.st_mode)
    if mode & _GROUP_OTHER_WRITE:
        raise UntrustedSocketError(
            path,
            "directory_writable",
            f"the socket {path} is in {directory}, which group or others can write "
            f"(mode {mode:04o}): anyone could put a fake agent there",
        )


def check_peer(path: str, sock: _socket.socket, own: int) -> None:
    """The uid of the process serving the connection."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(creds)
    if uid != own:
        raise UntrustedSocketError(
            path,
            "peer_uid",
            f"the socket {path} is served by uid {uid}, not you (uid {own}): "
            "something may be impersonating the agent",
        )
