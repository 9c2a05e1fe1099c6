"""Every error the package raises. One class per AVP error code (PROTOCOL.md §8), all under
:class:`AVPError`, so a program can catch one code or all of them; plus the local failures
that have no code (no agent, an untrusted socket, a bad ``AVP_SOURCE``).

Messages say what went wrong and, after `` — ``, what to do next. They never contain a secret
value or a passphrase: the agent's messages never quote request bytes, and ours quote only
names, paths and numbers.
"""

from typing import Dict, Optional, Type

__all__ = [
    "AVPError",
    "AuthenticationFailedError",
    "SessionError",
    "SessionExpiredError",
    "SessionTerminatedError",
    "SessionNotFoundError",
    "SecretNotFoundError",
    "InvalidNameError",
    "InvalidWorkspaceError",
    "CapacityExceededError",
    "BackendError",
    "BackendUnavailableError",
    "RateLimitExceededError",
    "ValueTooLargeError",
    "EncryptionError",
    "IntegrityError",
    "VaultLockedError",
    "VaultNotInitializedError",
    "PermissionDeniedError",
    "InvalidRequestError",
    "ProtocolError",
    "VersionMismatchError",
    "NoAgentError",
    "UntrustedSocketError",
    "SourceConfigError",
    "NotFoundError",
    "UnauthorizedError",
    "UntrustedSocket",
    "ERRORS_BY_CODE",
    "from_code",
    "START_AGENT_HINT",
]

START_AGENT_HINT = (
    "start one with `systemctl --user enable --now avp-agent.socket` "
    'or `eval "$(avp-agent --daemon)"`'
)


class AVPError(Exception):
    """Base of every error of this package. ``code`` is the AVP code (e.g.
    ``"SECRET_NOT_FOUND"``) or ``None`` for local failures that have none."""

    code: Optional[str] = None

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


# --- one class per AVP code, in the order of PROTOCOL.md §8 --------------------------------


class AuthenticationFailedError(AVPError):
    """A passphrase was wrong, or a vault record failed authentication."""

    code = "AUTHENTICATION_FAILED"


class SessionError(AVPError):
    """Common base of the three session codes: authenticate again."""


class SessionExpiredError(SessionError):
    code = "SESSION_EXPIRED"


class SessionTerminatedError(SessionError):
    code = "SESSION_TERMINATED"


class SessionNotFoundError(SessionError):
    code = "SESSION_NOT_FOUND"


class SecretNotFoundError(AVPError, KeyError):
    """No such secret (or version). Also a :class:`KeyError`, so ``get_secret`` callers that
    expect the dict-like contract of a secrets backend keep working."""

    code = "SECRET_NOT_FOUND"

    def __str__(self) -> str:  # KeyError would quote the message
        return AVPError.__str__(self)


class InvalidNameError(AVPError, ValueError):
    code = "INVALID_NAME"


class InvalidWorkspaceError(AVPError, ValueError):
    code = "INVALID_WORKSPACE"


class CapacityExceededError(AVPError):
    code = "CAPACITY_EXCEEDED"


class BackendError(AVPError):
    code = "BACKEND_ERROR"


class BackendUnavailableError(AVPError):
    code = "BACKEND_UNAVAILABLE"


class RateLimitExceededError(AVPError):
    code = "RATE_LIMIT_EXCEEDED"


class ValueTooLargeError(AVPError, ValueError):
    code = "VALUE_TOO_LARGE"


class EncryptionError(AVPError):
    code = "ENCRYPTION_ERROR"


class IntegrityError(AVPError):
    code = "INTEGRITY_ERROR"


class VaultLockedError(AVPError):
    code = "VAULT_LOCKED"


class VaultNotInitializedError(AVPError):
    code = "VAULT_NOT_INITIALIZED"


class PermissionDeniedError(AVPError):
    code = "PERMISSION_DENIED"


class InvalidRequestError(AVPError, ValueError):
    code = "INVALID_REQUEST"


class ProtocolError(AVPError):
    code = "PROTOCOL_ERROR"


class VersionMismatchError(AVPError):
    code = "VERSION_MISMATCH"


# The AVP docs' names for the same errors.
NotFoundError = SecretNotFoundError
UnauthorizedError = PermissionDeniedError

#: Every AVP code and its class.
ERRORS_BY_CODE: Dict[str, Type[AVPError]] = {
    cls.code: cls  # type: ignore[misc]
    for cls in (
        AuthenticationFailedError,
        SessionExpiredError,
        SessionTerminatedError,
        SessionNotFoundError,
        SecretNotFoundError,
        InvalidNameError,
        InvalidWorkspaceError,
        CapacityExceededError,
        BackendError,
        BackendUnavailableError,
        RateLimitExceededError,
        ValueTooLargeError,
        EncryptionError,
        IntegrityError,
        VaultLockedError,
        VaultNotInitializedError,
        PermissionDeniedError,
        InvalidRequestError,
        ProtocolError,
        VersionMismatchError,
    )
}


def from_code(code: str, message: str) -> AVPError:
    """The exception for an error the agent answered. An unknown code (a newer agent) is
    still an :class:`AVPError` carrying it."""
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        return AVPError(message, code=code)
    return cls(message)


# --- local failures: no AVP code ----------------------------------------------------------


class NoAgentError(AVPError, ConnectionError):
    """Nothing listens on the socket, or the agent went away mid-call."""

    def __init__(self, socket: str, reason: str) -> None:
        super().__init__(f"no agent answers on {socket} ({reason}) — {START_AGENT_HINT}")
        self.socket = socket


class UntrustedSocketError(AVPError):
    """The socket is not our own agent's: served by another uid, or in a directory another
    uid owns or group/other can write (PROTOCOL.md §2.3). Nothing was sent on it.
    ``reason`` is ``"peer_uid"``, ``"directory_owner"`` or ``"directory_writable"``."""

    _NEXT_STEP = {
        "peer_uid": "nothing was sent; do not use that socket: set XDG_RUNTIME_DIR or AVP_SOCK "
        "to a directory only you own and start your own agent there",
        "directory_owner": "nothing was sent; do not use that socket: set XDG_RUNTIME_DIR or "
        "AVP_SOCK to a directory only you own and start your own agent there",
        "directory_writable": "nothing was sent; make the directory private (`chmod go-w` it) "
        "or set AVP_SOCK to a socket in a directory only you can write",
    }

    def __init__(self, socket: str, reason: str, problem: str) -> None:
        super().__init__(f"{problem} — {self._NEXT_STEP[reason]}")
        self.socket = socket
        self.reason = reason


# The name the brief and the Rust client use.
UntrustedSocket = UntrustedSocketError


class SourceConfigError(AVPError):
    """``AVP_SOURCE`` / ``AVP_SECRETS_DIR`` name no usable source."""
