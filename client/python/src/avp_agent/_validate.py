"""Secret names and workspace ids (PROTOCOL.md §5.1, §5.2), checked where a name is used
before anything is sent or read — by ``get_secret``, whose ``dir`` source must never let a name
leave its directory. The reasons are the agent's, word for word; they never quote the input."""

import re

from .errors import InvalidNameError, InvalidWorkspaceError

_MAX_ID_LEN = 255
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.\-]*\Z")
_WORKSPACE_CHARS = re.compile(r"[A-Za-z0-9_./\-]*\Z")


def secret_name(name: str) -> str:
    """``name`` if it is a valid secret name, else :class:`InvalidNameError`."""
    data = name.encode("utf-8", "surrogatepass")
    if not data:
        raise InvalidNameError("a secret name must not be empty — fix the secret name")
    if len(data) > _MAX_ID_LEN:
        raise InvalidNameError("a secret name is at most 255 characters — fix the secret name")
    if not (name[0].isascii() and name[0].isalpha()):
        raise InvalidNameError("a secret name must start with an ASCII letter — fix the secret name")
    if not _NAME_CHARS.match(name):
        raise InvalidNameError(
            "a secret name may contain only ASCII letters, digits, '_', '.' and '-' "
            "— fix the secret name"
        )
    return name


def workspace_id(workspace: str) -> str:
    """``workspace`` if it is a valid workspace id, else :class:`InvalidWorkspaceError`."""
    hint = " — fix the workspace id (-w/--workspace or AVP_WORKSPACE)"
    data = workspace.encode("utf-8", "surrogatepass")
    if not data:
        raise InvalidWorkspaceError("a workspace id must not be empty" + hint)
    if len(data) > _MAX_ID_LEN:
        raise InvalidWorkspaceError("a workspace id is at most 255 characters" + hint)
    if not (workspace[0].isascii() and workspace[0].isalnum()):
        raise InvalidWorkspaceError("a workspace id must start with an ASCII letter or digit" + hint)
    if not _WORKSPACE_CHARS.match(workspace):
        raise InvalidWorkspaceError(
            "a workspace id may contain only ASCII letters, digits, '_', '.', '/' and '-'" + hint
        )
    segments = workspace.split("/")
    if any(not s for s in segments):
        raise InvalidWorkspaceError("a workspace id has no empty segment and no trailing '/'" + hint)
    if any(s == ".." for s in segments):
        raise InvalidWorkspaceError("a workspace id has no '..' segment" + hint)
    return workspace
