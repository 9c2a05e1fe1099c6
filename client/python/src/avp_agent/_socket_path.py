"""Where the agent's socket is — PROTOCOL.md §2.1, the same rule as the Rust client's
``socket_path.rs``: an explicit path, then ``AVP_SOCK``, then
``$XDG_RUNTIME_DIR/avp/agent.sock`` when ``XDG_RUNTIME_DIR`` is absolute, else
``/tmp/avp-$UID/agent.sock`` (real uid). Empty variables count as unset."""

import os
from typing import Callable, Mapping, Optional, Union

SOCKET_ENV = "AVP_SOCK"

PathLike = Union[str, "os.PathLike[str]"]


def from_env(var: Callable[[str], Optional[str]], uid: int) -> str:
    """The rule over any environment lookup and uid (testable without ``os.environ``)."""
    sock = var(SOCKET_ENV)
    if sock:
        return sock
    runtime = var("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "avp", "agent.sock")
    return f"/tmp/avp-{uid}/agent.sock"


def resolve(explicit: Optional[PathLike] = None, environ: Optional[Mapping[str, str]] = None) -> str:
    """The socket to use: ``explicit`` if given, else from the environment."""
    if explicit is not None:
        return os.fspath(explicit)
    env = os.environ if environ is None else environ
    return from_env(env.get, os.getuid())
