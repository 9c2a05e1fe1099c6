"""Each operation once: its request line and how its answer becomes a data class. The
blocking and the asyncio clients only move the lines."""

import re
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _wire
from ._wire import Bytesish, Op, is_plain, time_from, time_to
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

_AVP_OPERATIONS = ["DISCOVER", "AUTHENTICATE", "STORE", "RETRIEVE", "DELETE", "LIST", "ROTATE"]
_EXTENSIONS = [
    "TERMINATE",
    "HISTORY",
    "STATUS",
    "LOCK",
    "UNLOCK",
    "INIT",
    "CHANGE_PASSPHRASE",
]


def _none(_answer: Dict[str, Any]) -> None:
    return None


def discover() -> Op[DiscoverInfo]:
    def parse(a: Dict[str, Any]) -> DiscoverInfo:
        backend = a.get("backend") or {}
        return DiscoverInfo(
            version=str(a["protocol_version"]),
            backends=[backend.get("name", "")],
            operations=list(_AVP_OPERATIONS),
            extensions=list(_EXTENSIONS),
            protocol_version=int(a["protocol_version"]),
            agent_version=a.get("agent_version", ""),
            conformance=a.get("conformance", ""),
            backend_status=str(backend.get("status", "")).lower(),
            capabilities=dict(a.get("capabilities") or {}),
            auth_methods=list(a.get("auth_methods") or []),
            limits=dict(a.get("limits") or {}),
        )

    return Op(_wire.request("DISCOVER", {}), parse)


def authenticate(
    workspace: str, ttl_seconds: Optional[int], agent_id: Optional[str], wait_for_unlock: bool
) -> Op[Session]:
    fields: Dict[str, Any] = {
        "workspace": workspace,
        "agent_id": agent_id,
        "ttl_seconds": ttl_seconds,
    }
    if wait_for_unlock:  # sent only when asked: an older agent refuses unknown fields
        fields["wait_for_unlock"] = True

    def parse(a: Dict[str, Any]) -> Session:
        return Session(
            session_id=a["session_id"],
            workspace=a["workspace"],
            expires_at=time_from(a["expires_at"]),  # type: ignore[arg-type]
            ttl_seconds=int(a["ttl_seconds"]),
        )

    return Op(_wire.request("AUTHENTICATE", fields), parse)


def terminate(session_id: str) -> Op[None]:
    return Op(_wire.request("TERMINATE", {"session_id": session_id}), _none)


def store(
    session_id: str,
    name: str,
    value: Bytesish,
    labels: Optional[Dict[str, str]],
    expires_at: Union[datetime, None, object],
) -> Op[StoreResult]:
    fields = {
        "session_id": session_id,
        "name": name,
        "labels": labels,
        "expires_at": expires_at if expires_at is _wire.NULL else time_to(expires_at),  # type: ignore[arg-type]
    }

    def parse(a: Dict[str, Any]) -> StoreResult:
        return StoreResult(
            created=bool(a["created"]),
            version=int(a["version"]),
            created_at=time_from(a.get("created_at")),
            updated_at=time_from(a.get("updated_at")),
        )

    return Op(_wire.request("STORE", fields, values=[("value", value)]), parse)


def _metadata(a: Dict[str, Any]) -> SecretMetadata:
    return SecretMetadata(
        name=a["name"],
        version=int(a["version"]),
        labels=dict(a.get("labels") or {}),
        created_at=time_from(a.get("created_at")),
        updated_at=time_from(a.get("updated_at")),
        expires_at=time_from(a.get("expires_at")),
    )


def secret_of(a: Dict[str, Any]) -> Secret:
    # Positional arguments and no copy of the labels dict json just made: RETRIEVE is the
    # call programs make in a loop.
    labels = a["labels"]
    return Secret(
        a["name"],
        _wire.value_from(a["value"]),
        int(a["version"]),
        labels if type(labels) is dict else dict(labels),
        time_from(a["created_at"]),  # type: ignore[arg-type]
        time_from(a["updated_at"]),  # type: ignore[arg-type]
        time_from(a.get("expires_at")),
    )


# The tail of the agent's answer to a RETRIEVE, after the value, as it writes it
# (PROTOCOL.md §12.9: these fields in this order): labels without escapes, plain times.
_RETRIEVED_TAIL = re.compile(
    rb'","version":([0-9]{1,10}),"labels":(\{[^{}\\]*\}),"created_at":"([^"\\]*)",'
    rb'"updated_at":"([^"\\]*)","expires_at":(?:null|"([^"\\]*)")\}\n'
)

_VALUE_END = b'","version":'


def _plain_retrieve_line(session_id: str, name: str) -> Optional[str]:
    """The RETRIEVE line of the current version formatted in one step (what
    :func:`_wire.request` would build, without its field loop), or None when a string needs
    escaping. Every valid name and session id needs none."""
    if is_plain(session_id) and is_plain(name):
        return '{"op":"RETRIEVE","session_id":"' + session_id + '","name":"' + name + '"}\n'
    return None


class RetrieveCall:
    """RETRIEVE of one secret's current version, for a client that makes it again and
    again (the call programs make in a loop): the request line is built once (it holds no
    secret), and an answer of the usual shape is read in place in the receive buffer — the
    value decoded from it directly, the metadata after it parsed once and reused while its
    bytes stay the same. Anything else (an error, escapes, a field the agent adds one day)
    is left to the JSON parser (:meth:`read` returns None), for the same result."""

    __slots__ = ("name", "op", "_head", "_tail", "_fields")

    def __init__(self, name: str, line: str) -> None:
        self.name = name
        self.op: Op[Secret] = Op(line.encode("ascii"), secret_of)  # type: ignore[arg-type]
        self._head = ('{"ok":true,"name":"' + name + '","value":"').encode("ascii")
        self._tail = b""
        self._fields: Tuple[int, Dict[str, str], datetime, datetime, Optional[datetime]] = (0, {}, datetime.min, datetime.min, None)

    @staticmethod
    def for_names(session_id: str, name: str) -> Optional["RetrieveCall"]:
        """None when a string would need escaping (then :func:`retrieve` builds the line)."""
        line = _plain_retrieve_line(session_id, name)
        return None if line is None else RetrieveCall(name, line)

    def read(self, buffer: bytearray, n: int) -> Optional[Secret]:
        """The Secret in ``buffer[:n]``, or None if that is not one whole usual answer."""
        head, tail = self._head, self._tail
        start = len(head)
        if not buffer.startswith(head):
            return None
        end = n - len(tail)
        if not (tail and end >= start and buffer.endswith(tail, 0, n)):
            end = buffer.find(_VALUE_END, start, n)
            if end < 0 or not self._parse_tail(bytes(buffer[end:n])):
                return None
        version, labels, created, updated, expires = self._fields
        # Strict base64 (no quote can hide in it), so the line is exactly head, value, tail.
        encoded = buffer[start:end]
        try:
            value = _wire.value_from(encoded)  # type: ignore[arg-type]
        except ValueError:  # not base64: the JSON path reports it
            return None
        finally:
            encoded[:] = bytes(len(encoded))
        return Secret(self.name, value, version, dict(labels) if labels else {}, created, updated, expires)

    def _parse_tail(self, tail: bytes) -> bool:
        match = _RETRIEVED_TAIL.fullmatch(tail)
        if match is None:
            return False
        version, labels, created, updated, expires = match.groups()
        try:
            label_map = {} if labels == b"{}" else _wire.loads(labels.decode("ascii"))
            if type(label_map) is not dict:
                return False
            self._fields = (
                int(version),
                label_map,
                _wire.time_from_ascii(created),
                _wire.time_from_ascii(updated),
                None if expires is None else _wire.time_from_ascii(expires),
            )
        except ValueError:
            return False
        self._tail = tail
        return True


def retrieve(session_id: str, name: str, version: Optional[int]) -> Op[Secret]:
    if version is None and type(session_id) is str and type(name) is str:
        line = _plain_retrieve_line(session_id, name)
        if line is not None:
            return Op(bytearray(line, "ascii"), secret_of)
    fields = {"session_id": session_id, "name": name, "version": version}
    return Op(_wire.request("RETRIEVE", fields), secret_of)


def delete(session_id: str, name: str) -> Op[bool]:
    fields = {"session_id": session_id, "name": name}
    return Op(_wire.request("DELETE", fields), lambda a: bool(a["deleted"]))


def list_page(
    session_id: str,
    label_filter: Optional[Dict[str, str]],
    cursor: Optional[str],
    limit: Optional[int],
) -> Op[Tuple[List[SecretMetadata], Optional[str]]]:
    fields = {
        "session_id": session_id,
        "label_filter": label_filter or None,
        "cursor": cursor,
        "limit": limit,
    }

    def parse(a: Dict[str, Any]) -> Tuple[List[SecretMetadata], Optional[str]]:
        return [_metadata(s) for s in a["secrets"]], a.get("next_cursor")

    return Op(_wire.request("LIST", fields), parse)


def rotate(session_id: str, name: str, new_value: Bytesish) -> Op[RotateResult]:
    fields = {"session_id": session_id, "name": name}

    def parse(a: Dict[str, Any]) -> RotateResult:
        return RotateResult(
            previous_version=int(a["previous_version"]),
            new_version=int(a["new_version"]),
            updated_at=time_from(a.get("updated_at")),
        )

    return Op(_wire.request("ROTATE", fields, values=[("value", new_value)]), parse)


def history(session_id: str, name: str) -> Op[History]:
    fields = {"session_id": session_id, "name": name}

    def parse(a: Dict[str, Any]) -> History:
        versions = [
            VersionInfo(version=int(v["version"]), created_at=time_from(v["created_at"]))  # type: ignore[arg-type]
            for v in a["versions"]
        ]
        return History(name=a["name"], versions=versions)

    return Op(_wire.request("HISTORY", fields), parse)


def status() -> Op[Status]:
    def parse(a: Dict[str, Any]) -> Status:
        return Status(
            state=str(a["state"]).lower(),
            vault_location=a.get("vault_location", ""),
            backend=a.get("backend", ""),
            workspaces=int(a.get("workspaces", 0)),
            secrets=int(a.get("secrets", 0)),
            sessions=int(a.get("sessions", 0)),
            idle_lock_in_seconds=a.get("idle_lock_in_seconds"),
            max_unlock_in_seconds=a.get("max_unlock_in_seconds"),
            agent_version=a.get("agent_version", ""),
            protocol_version=int(a.get("protocol_version", 0)),
            pid=int(a.get("pid", 0)),
            hardening=dict(a.get("hardening") or {}),
        )

    return Op(_wire.request("STATUS", {}), parse)


def unlock(passphrase: Bytesish) -> Op[None]:
    return Op(_wire.request("UNLOCK", {}, passphrases=[("passphrase", passphrase)]), _none)


def lock() -> Op[None]:
    return Op(_wire.request("LOCK", {}), _none)


def init(passphrase: Bytesish, work_factor: Optional[int]) -> Op[None]:
    line = _wire.request("INIT", {"work_factor": work_factor}, passphrases=[("passphrase", passphrase)])
    return Op(line, _none)


def change_passphrase(old: Bytesish, new: Bytesish) -> Op[None]:
    secrets = [("old_passphrase", old), ("new_passphrase", new)]
    return Op(_wire.request("CHANGE_PASSPHRASE", {}, passphrases=secrets), _none)
