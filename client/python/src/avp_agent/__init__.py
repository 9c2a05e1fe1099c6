"""avp-backend-agent: talk to ``avp-agent`` from Python.

    import avp_agent
    with avp_agent.Client() as agent:
        session = agent.authenticate("default")
        print(agent.retrieve(session.session_id, "DB_PASSWORD").value)

- :class:`Client` (and :class:`avp_agent.aio.Client`): the AVP operations over the agent's
  socket, which is found and checked as every avp client does.
- :func:`get_secret` / :func:`get_secrets_backend`: the agent, the environment or a directory,
  as ``AVP_SOURCE`` says.
- :mod:`avp_agent.sdk` (extra ``[sdk]``): ``AgentBackend`` for avp-sdk's ``AVPClient``.
- :mod:`avp_agent.testing`: ``BackendTestSuite``, the AVP semantics as pytest tests.
"""

from ._socket_path import resolve as socket_path
from ._wire import NULL as CLEAR_EXPIRY
from .client import Client
from .errors import *  # noqa: F401,F403 - every error class is part of the API
from .errors import AVPError, SecretNotFoundError, UntrustedSocketError
from .sources import (
    AgentSource,
    DirSource,
    EnvSource,
    SecretsBackend,
    get_secret,
    get_secret_bytes,
    get_secrets_backend,
)
from .types import (
    DiscoverInfo,
    History,
    RotateResult,
    Secret,
    SecretMetadata,
    Session,
    Status,
    StoreResult,
    VersionInfo,
)

__version__ = "0.1.0"

__all__ = [
    "AVPError",
    "CLEAR_EXPIRY",
    "AgentSource",
    "Client",
    "DirSource",
    "DiscoverInfo",
    "EnvSource",
    "History",
    "RotateResult",
    "Secret",
    "SecretMetadata",
    "SecretNotFoundError",
    "SecretsBackend",
    "Session",
    "Status",
    "StoreResult",
    "UntrustedSocketError",
    "VersionInfo",
    "get_secret",
    "get_secret_bytes",
    "get_secrets_backend",
    "socket_path",
]
