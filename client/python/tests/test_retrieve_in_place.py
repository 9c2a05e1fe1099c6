"""``Client.retrieve`` of a current version reads the usual answer in place (the value
decoded from the receive buffer, the metadata after it parsed once and reused while its
bytes stay the same): it must give exactly what the JSON parser gives, follow every change
of the secret, and leave anything unusual to the JSON parser."""

import os
import socket
import threading
from datetime import datetime, timedelta, timezone

import pytest

import avp_agent
from avp_agent import errors


def same(a, b):
    return (a.name, a.value, a.version, a.labels, a.created_at, a.updated_at, a.expires_at) == (
        b.name, b.value, b.version, b.labels, b.created_at, b.updated_at, b.expires_at
    )


def test_repeated_retrieves_follow_every_change_and_match_the_json_path(shared_agent):
    client = shared_agent.client()
    session = client.authenticate("in-place").session_id
    name = "IN_PLACE"
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
    changes = [
        dict(value=b"first"),
        dict(value=b"second"),  # same metadata shape, another value and version
        dict(value=bytes(range(256)) * 4),  # every byte value
        dict(value=b"x", labels={"env": "prod"}),
        # Label text the in-place reader must leave to the JSON parser: braces, quotes,
        # backslashes, non-ASCII.
        dict(value=b"y", labels={"a{b": "c}d", "q": 'say "hi"', "s": "back\\slash", "u": "é✓"}),
        dict(value=b"z", labels={}, expires_at=later),
        dict(value=b"z2", expires_at=avp_agent.CLEAR_EXPIRY),
    ]
    for change in changes:
        client.store(session, name, **change)
        for _ in range(3):  # the first read parses the metadata, the next ones reuse it
            fast = client.retrieve(session, name)
            by_version = client.retrieve(session, name, version=fast.version)  # the JSON path
            assert same(fast, by_version), (fast, by_version)
            assert fast.value == change["value"]
            assert fast.labels is not by_version.labels
        fast.labels["mutated"] = "by the caller"
        assert "mutated" not in client.retrieve(session, name).labels
    # The in-place reader did read them (it keeps the metadata bytes it last parsed).
    assert [call._tail for call in client._retrieve_calls.values()] != [b""]
    with pytest.raises(errors.SecretNotFoundError):
        client.retrieve(session, "NO_SUCH_SECRET")
    client.delete(session, name)
    with pytest.raises(errors.SecretNotFoundError):
        client.retrieve(session, name)
    client.close()


class FakeAgent:
    """A socket that answers each line with the next of ``answers``."""

    def __init__(self, directory, answers):
        os.chmod(directory, 0o700)
        self.path = str(directory / "fake.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.answers = list(answers)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.listener.accept()
        with conn:
            pending = b""
            for answer in self.answers:
                while b"\n" not in pending:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                pending = pending.split(b"\n", 1)[1]
                conn.sendall(answer)

    def close(self):
        self.listener.close()


GOOD = (
    b'{"ok":true,"name":"K","value":"dmFsdWU=","version":1,"labels":{},'
    b'"created_at":"2026-12-03T12:00:00Z","updated_at":"2026-12-03T12:00:00Z","expires_at":null}\n'
)


@pytest.mark.parametrize(
    "bad",
    [
        # The metadata already seen, around a value that is not base64.
        GOOD.replace(b'"dmFsdWU="', b'"dmFs!WU="'),
        GOOD.replace(b'"dmFsdWU="', b'"dmFs","x":"WU="'),
        # The head of a usual answer, then something else.
        GOOD.replace(b'"version":1', b'"version":"1"'),
        b'{"ok":true,"name":"K","value":"dmFsdWU=' + b"\n",
    ],
)
def test_an_unusual_answer_goes_to_the_json_parser(tmp_path, bad):
    from avp_agent import _ops, _wire

    try:
        expected = _ops.secret_of(_wire.parse_answer(bytearray(bad[:-1])))
    except Exception as err:  # noqa: BLE001 - whatever the JSON path raises
        expected = err
    fake = FakeAgent(tmp_path, [GOOD, bad])
    try:
        client = avp_agent.Client(fake.path, timeout=2)
        # The usual answer, read in place: its metadata is now known.
        assert client.retrieve("avp_sess_x", "K").value == b"value"
        if isinstance(expected, Exception):
            with pytest.raises(type(expected)):
                client.retrieve("avp_sess_x", "K")
        else:
            assert same(client.retrieve("avp_sess_x", "K"), expected)
    finally:
        fake.close()
