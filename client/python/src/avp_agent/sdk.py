"""The agent as a backend of avp-sdk (``pip install avp-backend-agent[sdk]``).

An avp-sdk program changes one line::

    from avp import AVPClient
    from avp_agent.sdk import AgentBackend

    client = AVPClient(AgentBackend())          # was AVPClient(MemoryBackend()) / FileBackend(...)

avp-sdk's backends are keyed by workspace, without sessions (its ``AVPClient`` keeps its own);
``AgentBackend`` opens one agent session per workspace on first use, keeps it, and opens a new
one when the agent says it ended (expired, terminated by a lock). Errors are avp-sdk's own
classes (``avp.errors.SecretNotFoundError`` …), chosen by the AVP code, so the program's
``except`` clauses keep working. Semantics are the agent's (PROTOCOL.md §9): a ``store``
without ``labels`` keeps the secret's labels, as AVP says (avp-sdk's ``MemoryBackend`` clears
them); versions are retained, so ``retrieve(version=N)`` works for older versions.
"""

import threading
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

from avp import errors as sdk_errors
from avp.backends.base import BackendBase
from avp.types import BackendType, Capabilities, Limits, Secret, SecretMetadata

from ._socket_path import PathLike, resolve
from .client import DEFAULT_TIMEOUT, Client
from .errors import AVPError, NoAgentError, SessionError, UntrustedSocketError
from .types import DiscoverInfo
from .types import Secret as AgentSecret
from .types import SecretMetadata as AgentSecretMetadata

T = TypeVar("T")

__all__ = ["AgentBackend"]


def _naive_utc(when: Optional[datetime]) -> Optional[datetime]:
    """avp-sdk compares with ``datetime.utcnow()`` (naive UTC): hand it the same kind."""
    if when is None:
        return None
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def _sdk_error(err: AVPError) -> Exception:
    """avp-sdk's exception for our error, by AVP code (its base ``AVPError`` otherwise)."""
    if err.code is not None:
        code = err.code
    elif isinstance(err, UntrustedSocketError):
        code = "UNTRUSTED_SOCKET"  # the code the avp CLI reports under --json
    else:
        code = "BACKEND_UNAVAILABLE"  # no agent: for avp-sdk, its backend is unreachable
    cls = sdk_errors.ERROR_MAP.get(code, sdk_errors.AVPError)
    return cls(err.message, code=code)


class AgentBackend(BackendBase):
    """avp-sdk backend that keeps secrets in the running ``avp-agent``.

    ``socket_path`` defaults to the agent's usual socket (``AVP_SOCK`` …); the socket is
    checked as by :class:`avp_agent.Client`. ``wait_for_unlock`` makes the first use of a
    workspace wait for the vault to be unlocked instead of failing with ``VAULT_LOCKED``.
    """

    def __init__(
        self,
        socket_path: Optional[PathLike] = None,
        *,
        agent_id: str = "avp-sdk",
        ttl_seconds: Optional[int] = None,
        wait_for_unlock: bool = False,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
    ) -> None:
        self._socket_path = resolve(socket_path)
        self._agent_id = agent_id
        self._ttl_seconds = ttl_seconds
        self._wait_for_unlock = wait_for_unlock
        self._timeout = timeout
        self._lock = threading.RLock()
        self._client: Optional[Client] = None
        self._sessions: Dict[str, str] = {}
        self._discovered: Optional[DiscoverInfo] = None

    # --- plumbing ----------------------------------------------------------------------

    def _connection(self) -> Client:
        if self._client is None:
            self._client = Client(self._socket_path, timeout=self._timeout)
        return self._client

    def _session(self, client: Client, workspace: str) -> str:
        session = self._sessions.get(workspace)
        if session is None:
            session = client.authenticate(
                workspace,
                ttl_seconds=self._ttl_seconds,
                wait_for_unlock=self._wait_for_unlock,
                agent_id=self._agent_id,
            ).session_id
            self._sessions[workspace] = session
        return session

    def _call(self, workspace: Optional[str], call: Callable[[Client, str], T]) -> T:
        """Runs ``call(client, session_id)``; once more on a fresh session if the agent ended
        the old one, or on a fresh connection if the agent restarted."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    client = self._connection()
                    session = self._session(client, workspace) if workspace is not None else ""
                    return call(client, session)
                except SessionError as err:
                    self._sessions.pop(workspace or "", None)
                    if attempt == 2:
                        raise _sdk_error(err) from None
                except NoAgentError as err:
                    self._drop_connection()
                    if attempt == 2:
                        raise _sdk_error(err) from None
                except AVPError as err:
                    raise _sdk_error(err) from None
            raise AssertionError("unreachable")

    def _drop_connection(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._sessions.clear()

    def _discover(self) -> DiscoverInfo:
        if self._discovered is None:
            self._discovered = self._call(None, lambda c, _s: c.discover())
        return self._discovered

    # --- avp-sdk's BackendBase -----------------------------------------------------------

    @property
    def backend_type(self) -> BackendType:
        # A per-user secrets service of the operating system, as the keychain backends are.
        return BackendType.KEYCHAIN

    @property
    def backend_id(self) -> str:
        return f"avp-agent:{self._socket_path}"

    @property
    def capabilities(self) -> Capabilities:
        caps = self._discover().capabilities
        return Capabilities(
            attestation=False,
            rotation=bool(caps.get("rotation", True)),
            injection=False,
            audit=bool(caps.get("audit", False)),
            migration=False,
            implicit_sessions=True,
            expiration=bool(caps.get("expiration", True)),
            versioning=bool(caps.get("versioning", True)),
        )

    @property
    def limits(self) -> Limits:
        limits = self._discover().limits
        return Limits(
            max_secret_name_length=limits["max_secret_name_length"],
            max_secret_value_length=limits["max_secret_value_length"],
            max_labels_per_secret=limits["max_labels_per_secret"],
            max_secrets_per_workspace=limits["max_secrets_per_workspace"],
            max_session_ttl_seconds=limits["max_session_ttl_seconds"],
        )

    def get_info(self) -> Dict[str, str]:
        info = self._discover()
        return {
            "type": "avp-agent",
            "socket": self._socket_path,
            "agent_version": info.agent_version,
            "storage": ",".join(info.backends),
        }

    def store(
        self,
        workspace: str,
        name: str,
        value: bytes,
        labels: Optional[Dict[str, str]] = None,
        expires_at: Optional[datetime] = None,
    ) -> Tuple[bool, int]:
        result = self._call(workspace, lambda c, s: c.store(s, name, value, labels, expires_at))
        return result.created, result.version

    def retrieve(self, workspace: str, name: str, version: Optional[int] = None) -> Tuple[bytes, int]:
        secret = self._call(workspace, lambda c, s: c.retrieve(s, name, version))
        return secret.value, secret.version

    def delete(self, workspace: str, name: str) -> bool:
        return self._call(workspace, lambda c, s: c.delete(s, name))

    def list_secrets(
        self,
        workspace: str,
        filter_labels: Optional[Dict[str, str]] = None,
        cursor: Optional[str] = None,
        limit: int = 100,
    ) -> Tuple[List[Secret], Optional[str]]:
        page, next_cursor = self._call(
            workspace, lambda c, s: c.list_page(s, filter_labels, cursor, limit)
        )
        secrets = [
            Secret(
                name=meta.name,
                workspace=workspace,
                metadata=self._metadata(meta),
                value=None,
            )
            for meta in page
        ]
        return secrets, next_cursor

    def _metadata(self, meta: "AgentSecretMetadata | AgentSecret") -> SecretMetadata:
        """avp-sdk's metadata of an agent LIST entry or RETRIEVE answer (same fields)."""
        return SecretMetadata(
            created_at=_naive_utc(meta.created_at),  # type: ignore[arg-type]
            updated_at=_naive_utc(meta.updated_at),  # type: ignore[arg-type]
            backend=self.backend_type,
            version=meta.version,
            labels=dict(meta.labels),
            expires_at=_naive_utc(meta.expires_at),
        )

    def get_metadata(self, workspace: str, name: str) -> SecretMetadata:
        # The agent has no metadata-only lookup by name; RETRIEVE carries the metadata (the
        # value comes along over the private socket and is dropped here).
        secret = self._call(workspace, lambda c, s: c.retrieve(s, name))
        return self._metadata(secret)

    def rotate(self, workspace: str, name: str, new_value: bytes) -> int:
        # One ROTATE: atomic on the agent, unlike BackendBase's check-then-store default.
        return self._call(workspace, lambda c, s: c.rotate(s, name, new_value)).new_version

    def close(self) -> None:
        """Ends this backend's sessions and closes the connection."""
        with self._lock:
            if self._client is not None:
                for session in self._sessions.values():
                    try:
                        self._client.terminate(session)
                    except AVPError:
                        pass
            self._drop_connection()

    def __repr__(self) -> str:
        return f"AgentBackend({self._socket_path!r})"
