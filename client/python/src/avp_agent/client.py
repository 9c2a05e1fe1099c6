"""The blocking client: one connection to the agent, one request at a time (a lock makes a
client safe to share between threads)."""

import os
import socket
import struct
import threading
from datetime import datetime
from types import TracebackType
from typing import Dict, List, Optional, Tuple, Type, TypeVar, Union

from . import _ops, _trust, _wire
from ._socket_path import PathLike, resolve
from ._wire import Bytesish, Op
from .errors import NoAgentError, ProtocolError
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

#: How long a call waits for the agent's answer by default (seconds). The agent answers
#: within milliseconds except for unlocks (scrypt, and the wrong-passphrase delay of at most
#: 10 s); ``authenticate(wait_for_unlock=True)`` waits without limit.
DEFAULT_TIMEOUT = 60.0

SessionLike = Union[str, Session]


def session_id_of(session: SessionLike) -> str:
    return session.session_id if isinstance(session, Session) else session


def connect_error(path: str, err: OSError) -> NoAgentError:
    if isinstance(err, FileNotFoundError):
        reason = "no socket there"
    elif isinstance(err, ConnectionRefusedError):
        reason = "nothing listens on the socket"
    elif isinstance(err, PermissionError):
        reason = "permission denied"
    else:
        reason = os.strerror(err.errno) if err.errno else str(err)
    return NoAgentError(path, reason)


def _set_timeout(sock: socket.socket, seconds: Optional[float]) -> None:
    """A kernel timeout (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket: Python's own
    ``settimeout`` would poll() before every read and write, a syscall per call that the
    round trip does not need. ``None``: wait forever."""
    whole = int(seconds or 0)
    micros = int(((seconds or 0) - whole) * 1_000_000)
    value = struct.pack("ll", whole, micros)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def too_long(path: str) -> ProtocolError:
    return ProtocolError(
        f"the agent on {path} sent a line over {_wire.MAX_LINE} bytes — "
        "restart the agent; if it persists, report a bug"
    )


class Client:
    """A connection to the agent.

    ``Client()`` finds the socket as every avp client does (``AVP_SOCK``, then
    ``$XDG_RUNTIME_DIR/avp/agent.sock``, then ``/tmp/avp-$UID/agent.sock``) and, before
    sending a byte, checks that its directory is ours and private and that the process
    serving it runs as our uid (else :class:`~avp_agent.errors.UntrustedSocketError`).
    """

    def __init__(self, socket_path: Optional[PathLike] = None, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        self.socket_path = resolve(socket_path)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._chunk = bytearray(65536)
        self._retrieve_calls: Dict[Tuple[str, str], _ops.RetrieveCall] = {}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(self.socket_path)
        except OSError as err:
            self._sock.close()
            raise connect_error(self.socket_path, err) from None
        try:
            _trust.check(self.socket_path, self._sock)
        except BaseException:
            self._sock.close()
            raise
        # No HELLO: it is optional on the JSON wire (PROTOCOL.md §12.3) and would cost a
        # round trip on every connection; the JSON fields this client uses are stable.
        _set_timeout(self._sock, timeout)

    # --- plumbing ----------------------------------------------------------------------

    def _run(self, op: Op[T], timeout: Union[float, None, bool] = False) -> T:
        """Sends ``op``'s line, reads one answer line, parses it; wipes both buffers."""
        with self._lock:
            if timeout is not False:
                _set_timeout(self._sock, timeout)  # type: ignore[arg-type]
            try:
                try:
                    self._sock.sendall(op.line)
                finally:
                    _wire.wipe(op.line)
                line = self._read_line()
            except OSError as err:
                raise self._broken(err) from None
            finally:
                if timeout is not False and self._sock.fileno() >= 0:
                    _set_timeout(self._sock, self._timeout)
            try:
                return op.parse(_wire.parse_answer(line))
            finally:
                _wire.wipe(line)

    def _retrieve_in_place(self, call: "_ops.RetrieveCall") -> Secret:
        """:meth:`_run` for a :class:`~avp_agent._ops.RetrieveCall`, without the general
        path's options: the usual answer is read where it landed."""
        with self._lock:
            chunk = self._chunk
            try:
                self._sock.sendall(call.op.line)
                if self._buffer:
                    line = self._read_line()
                else:
                    received = self._sock.recv_into(chunk)
                    secret = call.read(chunk, received)
                    if secret is not None:
                        chunk[:received] = bytes(received)
                        return secret
                    line = self._read_line(received)
            except OSError as err:
                raise self._broken(err) from None
            try:
                return call.op.parse(_wire.parse_answer(line))
            finally:
                _wire.wipe(line)

    def _broken(self, err: OSError) -> NoAgentError:
        """Closes the connection a call failed on, and says why."""
        self.close()
        if isinstance(err, (BlockingIOError, socket.timeout)):  # SO_RCVTIMEO / SO_SNDTIMEO ran out
            return NoAgentError(self.socket_path, "it did not answer in time")
        return NoAgentError(self.socket_path, f"the connection broke: {err.strerror}")

    def _read_line(self, received: Optional[int] = None) -> bytearray:
        """The next answer line (without its newline). Bytes arrive through one reusable
        chunk buffer, wiped after each read, so no immutable copy of an answer is made here.
        ``received``: the first read was made already, and put that many bytes in it."""
        buffer, chunk = self._buffer, self._chunk
        if not buffer:
            # The usual case: the whole answer arrives in one read.
            n = self._sock.recv_into(chunk) if received is None else received
            if n and chunk[n - 1] == 0x0A and chunk[0] != 0:
                line = chunk[: n - 1]
                chunk[:n] = bytes(n)
                return line
            if not n:
                raise OSError(0, "the agent closed the connection")
            with memoryview(chunk) as view:
                buffer += view[:n]
            chunk[:n] = bytes(n)
        start = 0
        while True:
            if buffer[:1] == b"\0":
                self._raise_refusal()
            end = buffer.find(b"\n", start)
            if end >= 0:
                line = buffer[:end]
                # Keep what follows (nothing, with one request at a time); wipe the rest.
                rest = len(buffer) - end - 1
                buffer[:rest] = buffer[end + 1 :]
                buffer[rest:] = bytes(len(buffer) - rest)
                del buffer[rest:]
                return line
            if len(buffer) > _wire.MAX_LINE:
                self.close()
                raise too_long(self.socket_path)
            start = len(buffer)
            n = self._sock.recv_into(chunk)
            if not n:
                raise OSError(0, "the agent closed the connection")
            with memoryview(chunk) as view:
                buffer += view[:n]
            chunk[:n] = bytes(n)

    def _raise_refusal(self) -> None:
        """The agent refused the connection before knowing its codec and sent one bincode
        ``Error`` frame (PROTOCOL.md §12.1.2): read it whole and raise its code."""
        buffer = self._buffer
        while len(buffer) < 4 or len(buffer) < 4 + int.from_bytes(buffer[:4], "big"):
            if len(buffer) > 4 + 65536:
                raise too_long(self.socket_path)
            chunk = self._sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        self.close()
        raise _wire.refusal(bytes(buffer))

    def close(self) -> None:
        """Closes the connection (sessions stay open on the agent until they expire or are
        terminated)."""
        self._sock.close()
        _wire.wipe(self._buffer)
        _wire.wipe(self._chunk)
        self._retrieve_calls.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # --- the seven AVP operations ------------------------------------------------------

    def discover(self) -> DiscoverInfo:
        """What the agent is and supports; answered locked or not."""
        return self._run(_ops.discover())

    def authenticate(
        self,
        workspace: str = "default",
        ttl_seconds: Optional[int] = None,
        wait_for_unlock: bool = False,
        agent_id: Optional[str] = None,
    ) -> Session:
        """A session in ``workspace`` (TTL default 3,600 s, at most 86,400 s). With
        ``wait_for_unlock`` a locked agent holds the answer until someone unlocks it (e.g. a
        desktop prompt) instead of raising ``VaultLockedError``; the call then waits without
        a time limit."""
        op = _ops.authenticate(workspace, ttl_seconds, agent_id, wait_for_unlock)
        return self._run(op, timeout=None) if wait_for_unlock else self._run(op)

    def store(
        self,
        session_id: SessionLike,
        name: str,
        value: Bytesish,
        labels: Optional[Dict[str, str]] = None,
        expires_at: Union[datetime, None, object] = None,
    ) -> StoreResult:
        """Stores a new version of ``name``. ``labels`` None keeps the current labels, ``{}``
        clears them; ``expires_at`` None keeps the current expiry, a datetime sets it, and
        :data:`avp_agent.CLEAR_EXPIRY` removes it."""
        return self._run(_ops.store(session_id_of(session_id), name, value, labels, expires_at))

    def retrieve(self, session_id: SessionLike, name: str, version: Optional[int] = None) -> Secret:
        """The current (or a retained) version of ``name``, value included."""
        session = session_id_of(session_id)
        if version is None and type(session) is str and type(name) is str:
            calls = self._retrieve_calls
            call = calls.get((session, name))
            if call is None:
                call = _ops.RetrieveCall.for_names(session, name)
                if call is not None:
                    if len(calls) >= 64:
                        calls.clear()
                    calls[(session, name)] = call
            if call is not None:
                return self._retrieve_in_place(call)
        return self._run(_ops.retrieve(session, name, version))

    def delete(self, session_id: SessionLike, name: str) -> bool:
        """Deletes ``name`` and its versions; False if there was nothing to delete."""
        return self._run(_ops.delete(session_id_of(session_id), name))

    def list(
        self, session_id: SessionLike, label_filter: Optional[Dict[str, str]] = None
    ) -> List[SecretMetadata]:
        """Every secret of the session's workspace (all pages), sorted by name, metadata
        only; with ``label_filter`` only those carrying all its labels."""
        secrets: List[SecretMetadata] = []
        cursor: Optional[str] = None
        while True:
            page, cursor = self.list_page(session_id, label_filter, cursor)
            secrets.extend(page)
            if cursor is None:
                return secrets

    def list_page(
        self,
        session_id: SessionLike,
        label_filter: Optional[Dict[str, str]] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Tuple[List[SecretMetadata], Optional[str]]:
        """One page of LIST and the cursor of the next (None on the last page)."""
        return self._run(_ops.list_page(session_id_of(session_id), label_filter, cursor, limit))

    def rotate(self, session_id: SessionLike, name: str, new_value: Bytesish) -> RotateResult:
        """A new version of an existing secret (labels and expiry kept)."""
        return self._run(_ops.rotate(session_id_of(session_id), name, new_value))

    # --- avp's extensions --------------------------------------------------------------

    def history(self, session_id: SessionLike, name: str) -> History:
        """The retained versions of ``name``, oldest first, without values."""
        return self._run(_ops.history(session_id_of(session_id), name))

    def terminate(self, session_id: SessionLike) -> None:
        """Ends the session now."""
        self._retrieve_calls.clear()
        self._run(_ops.terminate(session_id_of(session_id)))

    def status(self) -> Status:
        """The agent's state, counts and timers."""
        return self._run(_ops.status())

    def unlock(self, passphrase: Bytesish) -> None:
        """Unlocks the vault. Pass a ``bytearray`` and wipe it after, if you can."""
        self._run(_ops.unlock(passphrase))

    def lock(self) -> None:
        """Locks the vault: every plaintext wiped, every session ended."""
        self._run(_ops.lock())

    def init(self, passphrase: Bytesish, work_factor: Optional[int] = None) -> None:
        """Creates the vault (left unlocked). ``work_factor`` is scrypt's log2 N, 10–22."""
        self._run(_ops.init(passphrase, work_factor))

    def change_passphrase(self, old: Bytesish, new: Bytesish) -> None:
        """Re-wraps the vault's key with ``new``."""
        self._run(_ops.change_passphrase(old, new))
