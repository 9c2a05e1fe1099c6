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
