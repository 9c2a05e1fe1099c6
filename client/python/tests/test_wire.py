"""The JSON lines the client writes and reads, without an agent: how secrets are encoded
(PROTOCOL.md §12.5), and reading a bincode refusal frame (§12.1.2)."""

import json

import pytest

from avp_agent import _ops, _wire, errors


def test_values_are_base64_and_passphrases_json_strings():
    line = _ops.store("avp_sess_x", "k", b"\xff\x00", None, None).line
    assert line.endswith(b"\n")
    assert json.loads(line) == {"op": "STORE", "session_id": "avp_sess_x", "name": "k", "value": "/wA="}
    line = _ops.change_passphrase("é\"".encode(), b"new").line
    assert json.loads(line) == {"op": "CHANGE_PASSPHRASE", "old_passphrase": 'é"', "new_passphrase": "new"}


def test_store_keeps_or_clears_the_expiry():
    keep = json.loads(_ops.store("s", "k", b"", None, None).line)
    assert "expires_at" not in keep and "labels" not in keep
    clear = json.loads(_ops.store("s", "k", b"", {}, _wire.NULL).line)
    assert clear["expires_at"] is None and clear["labels"] == {}


def test_a_passphrase_that_is_not_utf8_is_refused_before_sending():
    with pytest.raises(errors.InvalidRequestError):
        _ops.unlock(b"\xff")


def test_the_request_buffer_is_wiped_after_use():
    op = _ops.unlock(bytearray(b"hunter2"))
    assert b"hunter2" in op.line
    _wire.wipe(op.line)
    assert op.line == bytearray(len(op.line))


def test_a_bincode_refusal_frame_is_read():
    message = b"too many connections: retry shortly"
    frame = bytes([0, 0, 0, 3 + len(message), 0x0F, 10, len(message)]) + message
    err = _wire.refusal(frame)
    assert isinstance(err, errors.RateLimitExceededError)
    assert err.message == message.decode()
    assert isinstance(_wire.refusal(b"\0\0\0\x01\x05"), errors.ProtocolError)


def test_error_answers_raise_their_class():
    with pytest.raises(errors.SessionExpiredError):
        _wire.parse_answer(b'{"ok":false,"error":{"code":"SESSION_EXPIRED","message":"m"}}')
    with pytest.raises(errors.AVPError) as unknown:
        _wire.parse_answer(b'{"ok":false,"error":{"code":"FUTURE_CODE","message":"m"}}')
    assert unknown.value.code == "FUTURE_CODE"
    with pytest.raises(errors.ProtocolError):
        _wire.parse_answer(b"not json")


def test_strings_that_need_escaping_cannot_break_the_line():
    for name in ('a","version":9', "line\nbreak", "back\\slash", "é", "\x00"):
        line = _ops.retrieve("avp_sess_x", name, None).line
        assert line.count(b"\n") == 1
        assert json.loads(line) == {"op": "RETRIEVE", "session_id": "avp_sess_x", "name": name}
    line = _ops.authenticate("team/job", 60, "ci runner: 1", True).line
    assert json.loads(line) == {
        "op": "AUTHENTICATE", "workspace": "team/job", "agent_id": "ci runner: 1",
        "ttl_seconds": 60, "wait_for_unlock": True,
    }


# --- the fast paths give exactly what the plain library calls give ------------------------

HOSTILE_TEXTS = [
    '{"ok":true,"name":"a\\"b\\\\c\\/d\\n\\t\\u0000","value":"AA=="}',
    '{"ok":true,"name":"\\u00e9\\ud83d\\ude00 é 😀","labels":{"k":"v","k":"w"}}',
    '{"ok":true,"version":1e400,"n":-0,"f":1.5e-3,"big":123456789012345678901234567890}',
    '{"ok":true,"x":NaN,"y":Infinity,"z":-Infinity}',
    '  {"ok":true}  ',
    '\t{"ok":true}\n',
    '{"ok":true} x',
    '{"ok":true}{"ok":false}',
    '{"ok":true',
    '{"ok":tru}',
    '{"ok":"\\ud800"}',
    '{"ok":"\x01"}',
    '{"ok":"\\x"}',
    "\ufeff{}",
    "",
    " ",
    "[1,2",
    '"just a string"',
    "123",
    "null",
    '{"a":[[[[[[[]]]]]]]}',
]


def outcome(parse, text):
    try:
        return ("value", repr(parse(text)))
    except ValueError as err:
        return ("error", type(err), str(err))


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_loads_is_json_loads(text):
    assert outcome(_wire.loads, text) == outcome(json.loads, text)


def test_parse_answer_reads_escapes_and_unicode():
    line = '{"ok":true,"name":"q\\"\\u00e9😀","labels":{"a":"\\n"}}'.encode("utf-8")
    assert _wire.parse_answer(bytearray(line)) == {"ok": True, "name": 'q"é😀', "labels": {"a": "\n"}}
    with pytest.raises(errors.ProtocolError):
        _wire.parse_answer(bytearray(b'{"ok":true} trailing'))
    with pytest.raises(errors.ProtocolError):
        _wire.parse_answer(bytearray(b'{"ok":true,"name":"\xff"}'))


@pytest.mark.parametrize(
    "text", ["AA=", "A", "AA==AA==", "AA=A", "=AAA", "AA AA", "AA\nAA", "AA-_", "AA==\n", "é", "****"]
)
def test_a_value_that_is_not_strict_base64_is_refused(text):
    with pytest.raises(ValueError):
        _wire.value_from(text)
    # The Python < 3.11 path (b64decode's validate) refuses it too.
    with pytest.raises(ValueError):
        _wire._validated_base64(text)


def test_values_decode_as_base64():
    import base64
    import os

    for size in (0, 1, 2, 3, 32, 1000):
        value = os.urandom(size)
        assert _wire.value_from(base64.b64encode(value).decode("ascii")) == value


@pytest.mark.parametrize(
    "text,plain",
    [("API_KEY", True), ("team/job x:1", True), ("", True), ('a"b', False), ("a\\b", False),
     ("\x00", False), ("\x1f", False), ("\x7f", False), ("é", False), ("a\nb", False)],
)
def test_plain_strings_are_exactly_those_json_writes_as_they_are(text, plain):
    assert _wire.is_plain(text) is plain
    if plain:
        assert json.dumps(text, ensure_ascii=True) == '"' + text + '"'


@pytest.mark.parametrize("name", ["API_KEY", 'a"b', "é", "a\\b", "\x00"])
@pytest.mark.parametrize("version", [None, 0, 7])
def test_the_retrieve_line_is_the_generic_request_line(name, version):
    fields = {"session_id": "avp_sess_x", "name": name, "version": version}
    assert _ops.retrieve("avp_sess_x", name, version).line == _wire.request("RETRIEVE", fields)
