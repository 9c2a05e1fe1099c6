"""The asyncio client: the same operations as :class:`avp_agent.Client`, awaited.

    async with await avp_agent.aio.Client.connect() as agent:
        session = await agent.authenticate("default")
        secret = await agent.retrieve(session.session_id, "DB_PASSWORD")

The socket is connected and checked (directory and peer uid) before the first byte, as in
the blocking client. One request at a time per connection (an ``asyncio.Lock``).
"""

import asyncio
import socket
from datetime import datetime
from types import TracebackType
from typing import Dict, List, Optional, Tuple, Type, TypeVar, Union

from . import _ops, _trust, _wire
from ._socket_path import PathLike, resolve
from ._wire import Bytesish, Op
from .client import DEFAULT_TIMEOUT, SessionLike, connect_error, session_id_of, too_long
from .errors import NoAgentError
from .types import (
    DiscoverInfo,
    History,
    RotateResult,
    Secret,
    SecretMetadata,
    Session,
    Status,
    StoreResult,
)

T = TypeVar("T")

__all__ = ["Client"]


class Client:
    """An asyncio connection to the agent. Make one with ``await Client.connect()``."""

    def __init__(
        self,
        socket_path: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: Optional[float],
    ) -> None:
        self.socket_path = socket_path
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, socket_path: Optional[PathLike] = None, timeout: Optional[float] = DEFAULT_TIMEOUT
    ) -> "Client":
        """Connects and checks that the socket is our own agent's; nothing is sent yet."""
        path = resolve(socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(sock, path)
        except OSError as err:
            sock.close()
            raise connect_error(path, err) from None
        try:
            _trust.check(path, sock)
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_wire.MAX_LINE + 1)
        # No HELLO: optional on the JSON wire (PROTOCOL.md §12.3), as in the blocking client.
        return cls(path, reader, writer, timeout)

    async def _run(self, op: Op[T], timeout: Optional[float] = DEFAULT_TIMEOUT, keep: bool = True) -> T:
        async with self._lock:
            try:
                try:
                    self._writer.write(op.line)
                finally:
                    _wire.wipe(op.line)
                await self._writer.drain()
                wait = self._timeout if keep else timeout
                first = await asyncio.wait_for(self._reader.readexactly(1), wait)
                if first == b"\0":  # a bincode refusal (PROTOCOL.md §12.1.2)
                    rest = await asyncio.wait_for(self._reader.read(65536), wait)
                    await self.close()
                    raise _wire.refusal(first + rest)
                rest = await asyncio.wait_for(self._reader.readuntil(b"\n"), wait)
                line = bytearray(first + rest)
            except asyncio.TimeoutError:
                await self.close()
                raise NoAgentError(self.socket_path, "it did not answer in time") from None
            except asyncio.LimitOverrunError:
                await self.close()
                raise too_long(self.socket_path) from None
            except (OSError, asyncio.IncompleteReadError) as err:
                await self.close()
                reason = getattr(err, "strerror", None) or "the agent closed the connection"
                raise NoAgentError(self.socket_path, f"the connection broke: {reason}") from None
            try:
                return op.parse(_wire.parse_answer(line))
            finally:
                _wire.wipe(line)

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    async def discover(self) -> DiscoverInfo:
        return await self._run(_ops.discover())

    async def authenticate(
        self,
        workspace: str = "default",
        ttl_seconds: Optional[int] = None,
        wait_for_unlock: bool = False,
        agent_id: Optional[str] = None,
    ) -> Session:
        op = _ops.authenticate(workspace, ttl_seconds, agent_id, wait_for_unlock)
        if wait_for_unlock:
            return await self._run(op, timeout=None, keep=False)
        return await self._run(op)

    async def store(
        self,
        session_id: SessionLike,
        name: str,
        value: Bytesish,
        labels: Optional[Dict[str, str]] = None,
        expires_at: Union[datetime, None, object] = None,
    ) -> StoreResult:
        return await self._run(_ops.store(session_id_of(session_id), name, value, labels, expires_at))

    async def retrieve(self, session_id: SessionLike, name: str, version: Optional[int] = None) -> Secret:
        return await self._run(_ops.retrieve(session_id_of(session_id), name, version))

    async def delete(self, session_id: SessionLike, name: str) -> bool:
        return await self._run(_ops.delete(session_id_of(session_id), name))

    async def list(
        self, session_id: SessionLike, label_filter: Optional[Dict[str, str]] = None
    ) -> List[SecretMetadata]:
        secrets: List[SecretMetadata] = []
        cursor: Optional[str] = None
        while True:
            page, cursor = await self.list_page(session_id, label_filter, cursor)
            secrets.extend(page)
            if cursor is None:
                return secrets

    async def list_page(
        self,
        session_id: SessionLike,
        label_filter: Optional[Dict[str, str]] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Tuple[List[SecretMetadata], Optional[str]]:
        return await self._run(_ops.list_page(session_id_of(session_id), label_filter, cursor, limit))

    async def rotate(self, session_id: SessionLike, name: str, new_value: Bytesish) -> RotateResult:
        return await self._run(_ops.rotate(session_id_of(session_id), name, new_value))

    async def history(self, session_id: SessionLike, name: str) -> History:
        return await self._run(_ops.history(session_id_of(session_id), name))

    async def terminate(self, session_id: SessionLike) -> None:
        await self._run(_ops.terminate(session_id_of(session_id)))

    async def status(self) -> Status:
        return await self._run(_ops.status())

    async def unlock(self, passphrase: Bytesish) -> None:
        await self._run(_ops.unlock(passphrase))

    async def lock(self) -> None:
        await self._run(_ops.lock())

    async def init(self, passphrase: Bytesish, work_factor: Optional[int] = None) -> None:
        await self._run(_ops.init(passphrase, work_factor))

    async def change_passphrase(self, old: Bytesish, new: Bytesish) -> None:
        await self._run(_ops.change_passphrase(old, new))
