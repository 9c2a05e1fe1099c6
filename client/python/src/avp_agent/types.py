"""The answers' data classes. The first fields of each are the AVP docs' ("Custom Backends"),
with their names; the agent's extra facts follow. Times are timezone-aware UTC datetimes;
values are ``bytes``."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional


@dataclass
class DiscoverInfo:
    """What the agent is and what it supports (DISCOVER)."""

    version: str
    """The AVP protocol version the agent speaks, as text (e.g. ``"2"``)."""
    backends: List[str]
    """The storage backend in use (``vault``, ``memory`` or ``redis``)."""
    operations: List[str]
    """The AVP operations the agent serves."""
    extensions: List[str]
    """The avp operations beyond AVP's seven (``HISTORY``, ``STATUS``, ``LOCK`` …)."""
    protocol_version: int = 0
    agent_version: str = ""
    conformance: str = ""
    backend_status: str = ""
    """``available``, ``locked`` or ``unavailable``."""
    capabilities: Dict[str, bool] = field(default_factory=dict)
    auth_methods: List[str] = field(default_factory=list)
    limits: Dict[str, int] = field(default_factory=dict)


@dataclass
class Session:
    """A session bound to one workspace (AUTHENTICATE). ``session_id`` is a bearer token:
    keep it out of logs."""

    session_id: str
    workspace: str
    expires_at: datetime
    ttl_seconds: int = 0

    def __repr__(self) -> str:  # never print the bearer token by accident
        return (
            f"Session(session_id='avp_sess_…', workspace={self.workspace!r}, "
            f"expires_at={self.expires_at!r}, ttl_seconds={self.ttl_seconds})"
        )


@dataclass
class Secret:
    """A secret with its value (RETRIEVE)."""

    name: str
    value: bytes
    version: int
    labels: Dict[str, str]
    created_at: datetime
    updated_at: datetime
    expires_at: Optional[datetime] = None

    def __repr__(self) -> str:  # never print the value by accident
        return (
            f"Secret(name={self.name!r}, value=<{len(self.value)} bytes>, version={self.version}, "
            f"labels={self.labels!r}, created_at={self.created_at!r}, "
            f"updated_at={self.updated_at!r}, expires_at={self.expires_at!r})"
        )


@dataclass
class SecretMetadata:
    """A secret without its value (LIST)."""

    name: str
    version: int
    labels: Dict[str, str]
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None


@dataclass
class StoreResult:
    """What STORE did: ``created`` is true for a new secret (version 1)."""

    created: bool
    version: int
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None


@dataclass
class RotateResult:
    """What ROTATE did."""

    previous_version: int
    new_version: int
    updated_at: Optional[datetime] = None


@dataclass
class VersionInfo:
    """One retained version of a secret (HISTORY): never its value."""

    version: int
    created_at: datetime


@dataclass
class History:
    """The retained versions of a secret, oldest first (HISTORY)."""

    name: str
    versions: List[VersionInfo]


@dataclass
class Status:
    """The agent's state (STATUS). ``state`` is ``uninitialized``, ``locked`` or
    ``unlocked``."""

    state: str
    vault_location: str
    backend: str
    workspaces: int
    secrets: int
    sessions: int
    idle_lock_in_seconds: Optional[int]
    max_unlock_in_seconds: Optional[int]
    agent_version: str
    protocol_version: int
    pid: int
    hardening: Dict[str, Optional[int]] = field(default_factory=dict)
