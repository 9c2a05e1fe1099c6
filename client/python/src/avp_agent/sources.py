"""Where an application's secrets come from, chosen by the environment, so the same code runs
on a developer machine with the agent and in a container without one — exactly the rules of
the Rust ``avp_client::get_secret``:

- ``AVP_SOURCE=agent`` (the default; empty counts as unset): the agent on the socket of
  PROTOCOL.md §2.1 (``AVP_SOCK`` …), in the workspace ``AVP_WORKSPACE`` (default ``default``);
- ``AVP_SOURCE=env``: the environment variable of the secret's name (set but empty is an
  empty value, not a missing one);
- ``AVP_SOURCE=dir``: the file of the secret's name in ``AVP_SECRETS_DIR`` (mounted container
  secrets; required with ``dir``).

Values come back exactly as stored: a file's trailing newline, if any, is part of its value.
A missing secret raises :class:`~avp_agent.errors.SecretNotFoundError` (also a ``KeyError``),
never an empty value. The name is validated first (``INVALID_NAME``), so it cannot leave the
directory of the ``dir`` source.
"""

import os
from typing import Callable, Mapping, Optional, Protocol

from . import _validate
from ._socket_path import SOCKET_ENV
from .client import Client
from .errors import AVPError, SecretNotFoundError, SourceConfigError

SOURCE_ENV = "AVP_SOURCE"
WORKSPACE_ENV = "AVP_WORKSPACE"
SECRETS_DIR_ENV = "AVP_SECRETS_DIR"
DEFAULT_WORKSPACE = "default"


class SecretsBackend(Protocol):
    """A place secrets are read from by name — the pluggable-secrets-backend interface."""

    def get_secret(self, name: str) -> str:
        """The value as text; raises ``KeyError`` (:class:`SecretNotFoundError`) if missing."""
        ...

    def get_secret_bytes(self, name: str) -> bytes:
        """The value exactly as stored."""
        ...

    def describe(self) -> str:
        """Where the secrets come from, for messages ("the environment")."""
        ...


class _Source:
    """``get_secret`` over ``get_secret_bytes``."""

    def get_secret_bytes(self, name: str) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def get_secret(self, name: str) -> str:
        value = self.get_secret_bytes(name)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise AVPError(
                f"the secret `{name}` in {self.describe()} is not UTF-8 text "
                "— read it with get_secret_bytes()"
            ) from None

    def _not_found(self, name: str) -> SecretNotFoundError:
        return SecretNotFoundError(
            f"no secret named `{name}` in {self.describe()} — store it there first"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


class AgentSource(_Source):
    """Reads secrets from the agent, one short session per call."""

    def __init__(self, socket: Optional[str] = None, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.socket = socket
        self.workspace = _validate.workspace_id(workspace)

    def get_secret_bytes(self, name: str) -> bytes:
        name = _validate.secret_name(name)
        with Client(self.socket) as agent:
            session = agent.authenticate(self.workspace)
            try:
                return agent.retrieve(session.session_id, name).value
            except SecretNotFoundError:
                raise self._not_found(name) from None
            finally:
                try:  # best effort: the session would expire anyway
                    agent.terminate(session.session_id)
                except AVPError:
                    pass

    def describe(self) -> str:
        return f"workspace `{self.workspace}` of the agent"


class EnvSource(_Source):
    """Reads the environment variable named like the secret."""

    def get_secret_bytes(self, name: str) -> bytes:
        name = _validate.secret_name(name)
        value = os.environb.get(name.encode("ascii"))
        if value is None:
            raise self._not_found(name)
        return value

    def describe(self) -> str:
        return "the environment"


class DirSource(_Source):
    """Reads the file named like the secret in a directory. Valid names contain no ``/`` and
    do not start with ``.``, so a name never leaves the directory."""

    def __init__(self, directory: str) -> None:
        self.dir = directory

    def get_secret_bytes(self, name: str) -> bytes:
        name = _validate.secret_name(name)
        path = os.path.join(self.dir, name)
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise self._not_found(name) from None
        except OSError as err:
            raise AVPError(
                f"cannot read {path}: {err.strerror} — check the path and its permissions"
            ) from None

    def describe(self) -> str:
        return f"directory {self.dir}"


def source_from(var: Callable[[str], Optional[str]]) -> _Source:
    """The source an environment lookup selects (testable without ``os.environ``)."""
    kind = var(SOURCE_ENV) or None
    if kind is None or kind == "agent":
        workspace = var(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        return AgentSource(socket=var(SOCKET_ENV) or None, workspace=workspace)
    if kind == "env":
        return EnvSource()
    if kind == "dir":
        directory = var(SECRETS_DIR_ENV)
        if not directory:
            raise SourceConfigError(
                "AVP_SOURCE=dir needs AVP_SECRETS_DIR — set it to the directory holding one "
                "file per secret"
            )
        return DirSource(directory)
    raise SourceConfigError("AVP_SOURCE must be `agent`, `env` or `dir` — fix the environment variable")


def get_secrets_backend(environ: Optional[Mapping[str, str]] = None) -> _Source:
    """The source the environment (``os.environ`` by default) selects. Read it once at
    start-up and hand it to the code that needs secrets."""
    env = os.environ if environ is None else environ
    return source_from(env.get)


def get_secret_bytes(name: str) -> bytes:
    """The secret ``name``, exactly as stored, from the source ``AVP_SOURCE`` selects."""
    _validate.secret_name(name)
    return get_secrets_backend().get_secret_bytes(name)


def get_secret(name: str) -> str:
    """The secret ``name`` as text from the source ``AVP_SOURCE`` selects (the agent by
    default). Missing: :class:`SecretNotFoundError`, which is a ``KeyError``.

    >>> password = get_secret("DB_PASSWORD")  # doctest: +SKIP
    """
    _validate.secret_name(name)
    return get_secrets_backend().get_secret(name)
