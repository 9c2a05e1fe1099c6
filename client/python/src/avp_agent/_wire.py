"""The JSON-lines wire (PROTOCOL.md, "JSON wire"): one JSON object per line each way.

A request line is built in a ``bytearray`` with the secret (a value or a passphrase) spliced
in last, so the buffer that held it can be wiped after sending; an answer line is read into a
``bytearray`` and wiped after parsing. Python cannot wipe the ``str``/``bytes`` objects that
``json`` and ``base64`` make on the way (they are immutable): see the README's limits.
"""

import base64
import binascii
import functools
import json
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Generic, Iterable, Optional, Tuple, TypeVar, Union

from .errors import ERRORS_BY_CODE, AVPError, InvalidRequestError, ProtocolError, from_code

T = TypeVar("T")

#: The longest line either side sends (PROTOCOL.md: the same 1 MiB as a bincode frame).
MAX_LINE = 1 << 20

Bytesish = Union[bytes, bytearray, memoryview]

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
# json.loads without its two whitespace regex matches and call layers (a third of its time on
# a RETRIEVE answer): the same C scanner it calls. See parse_answer.
_scan_once = json.JSONDecoder().scan_once


def is_plain(text: str) -> bool:
    """Whether ``text`` is its own JSON string body: printable ASCII without a quote or a
    backslash (every valid name, workspace and session id). Four C calls, cheaper than a
    regex match."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


class Op(Generic[T]):
    """A request line and how to read its answer."""

    __slots__ = ("line", "parse")

    def __init__(self, line: bytearray, parse: Callable[[Dict[str, Any]], T]) -> None:
        self.line = line
        self.parse = parse


def wipe(buffer: Union[bytearray, memoryview]) -> None:
    """Overwrites a mutable buffer with zeros."""
    buffer[:] = bytes(len(buffer))


class _Null:
    """A field sent as JSON ``null`` (STORE's ``expires_at``: null clears, absent keeps)."""

    def __repr__(self) -> str:
        return "CLEAR"


NULL = _Null()


def request(
    op: str,
    fields: Dict[str, Any],
    values: Iterable[Tuple[str, Bytesish]] = (),
    passphrases: Iterable[Tuple[str, Bytesish]] = (),
) -> bytearray:
    """The line for ``op`` with ``fields`` (None left out, :data:`NULL` as ``null``), then the
    secrets spliced in last: ``values`` base64-encoded (§12.5.3), ``passphrases`` as JSON
    strings (§12.5.4)."""
    # Hand-built: json's encoder costs more than the round trip's syscalls. Strings made of
    # characters that never need escaping (every valid name, workspace and session id) go in
    # as they are; anything else goes through json.dumps, so no input can break the line.
    parts = ['{"op":"' + op + '"']
    for key, field in fields.items():
        if field is None:
            continue
        if type(field) is str and is_plain(field):
            parts.append(',"%s":"%s"' % (key, field))
        else:
            parts.append(',"%s":%s' % (key, "null" if field is NULL else _dumps(field)))
    line = bytearray("".join(parts).encode("ascii"))
    for key, secret in values:
        line += b',"%s":"' % key.encode("ascii")
        line += _base64(secret)
        line += b'"'
    for key, secret in passphrases:
        line += b',"%s":"' % key.encode("ascii")
        line += _json_string_body(secret)
        line += b'"'
    line += b"}\n"
    return line


def _base64(secret: Bytesish) -> bytes:
    return binascii.b2a_base64(secret, newline=False)


def _json_string_body(secret: Bytesish) -> bytes:
    """A UTF-8 passphrase as the inside of a JSON string."""
    try:
        text = bytes(secret).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("a passphrase must be UTF-8 text — type it again") from None
    return json.dumps(text, ensure_ascii=True)[1:-1].encode("ascii")


def parse_answer(line: Bytesish) -> Dict[str, Any]:
    """The answer object; an error answer raises its code's exception."""
    try:
        # Decoding first is faster than json.loads on a bytearray (same copies either way).
        text = bytes(line).decode("utf-8") if isinstance(line, memoryview) else line.decode("utf-8")
        answer = loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(
            f"the agent sent a line that is not JSON ({err.__class__.__name__}) — "
            "restart the agent; if it persists, report a bug"
        ) from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise ProtocolError(
            "the agent sent an answer without `ok` — restart the agent; if it persists, report a bug"
        )
    if answer["ok"] is True:
        return answer
    error = answer.get("error") or {}
    raise from_code(str(error.get("code", "PROTOCOL_ERROR")), str(error.get("message", "")))


def loads(text: str) -> Any:
    """Exactly ``json.loads(text)`` for a ``str``, faster on the agent's answers.

    ``json.loads`` is ``JSONDecoder.decode``: skip leading whitespace (a regex), run the C
    scanner, skip trailing whitespace (a regex), refuse anything left. The agent's lines have
    no whitespace around the object, so the scanner alone reading the whole text is the same
    result; any other text (whitespace around it, trailing data, not JSON) goes through
    ``json.loads`` itself, for the same value or the same error."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


# --- field conversions ---------------------------------------------------------------------


def time_from(text: Optional[str]) -> Optional[datetime]:
    """An RFC 3339 UTC time (``2030-03-17T17:46:40Z``) as an aware datetime."""
    if text is None:
        return None
    return _parse_time(text)


@functools.lru_cache(maxsize=1024)
def _parse_time(text: str) -> datetime:
    # Cached: the same secret's times come back on every RETRIEVE, and datetimes are immutable.
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@functools.lru_cache(maxsize=1024)
def time_from_ascii(text: bytes) -> datetime:
    """:func:`time_from` for the bytes of a time matched in an answer line."""
    return _parse_time(text.decode("ascii"))


def time_to(when: Optional[datetime]) -> Optional[str]:
    """An aware datetime (naive ones are taken as UTC, as avp-sdk makes them) as RFC 3339."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strict_base64(text: Union[str, bytes]) -> bytes:
    return binascii.a2b_base64(text, strict_mode=True)  # type: ignore[call-arg]


def _validated_base64(text: Union[str, bytes]) -> bytes:
    return base64.b64decode(text, validate=True)


try:
    _strict_base64("")
    _decode_base64 = _strict_base64
except TypeError:  # Python < 3.11: no strict_mode
    _decode_base64 = _validated_base64


def value_from(text: Union[str, bytes]) -> bytes:
    """A base64 value: only the alphabet and correct padding (``binascii.Error``, a
    ``ValueError``, otherwise). On Python ≥ 3.11 binascii's strict mode checks it in C, half
    the cost of ``b64decode(validate=True)``'s regex and extra call."""
    return _decode_base64(text)


def refusal(frame: bytes) -> AVPError:
    """The error in a bincode ``Error`` frame (§7.16): ``00 00 00 n``, ``0f``, the code's
    index (§8), the message's varint length, the message."""
    codes = list(ERRORS_BY_CODE)
    try:
        payload = frame[4 : 4 + int.from_bytes(frame[:4], "big")]
        if payload[0] != 0x0F or payload[1] >= len(codes):
            raise IndexError
        length, at = payload[2], 3
        if length == 0xFB:
            length, at = int.from_bytes(payload[3:5], "little"), 5
        message = payload[at : at + length].decode("utf-8", "replace")
        return from_code(codes[payload[1]], message)
    except IndexError:
        return ProtocolError(
            "the agent refused the connection with an unreadable frame — "
            "restart the agent; if it persists, report a bug"
        )
