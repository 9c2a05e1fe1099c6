"""avp_agent.Client against the real agent: the operations the suite does not cover
(DISCOVER's details, STATUS, INIT/LOCK/UNLOCK/CHANGE_PASSPHRASE, clearing an expiry), the
errors' classes, and that values and session ids stay out of reprs."""

from datetime import datetime, timedelta, timezone

import pytest

import avp_agent
from avp_agent import errors
from agent import PASSPHRASE


def test_discover_describes_the_agent(shared_agent):
    with shared_agent.client() as c:
        info = c.discover()
    assert info.version == str(info.protocol_version) and info.protocol_version >= 1
    assert info.backends == ["vault"]
    assert info.backend_status == "available"
    assert info.capabilities["versioning"] and info.capabilities["rotation"]
    assert info.limits["max_secret_value_length"] == 65536
    assert "HISTORY" in info.extensions


def test_status_reports_the_unlocked_vault(shared_agent):
    with shared_agent.client() as c:
        status = c.status()
    assert status.state == "unlocked"
    assert status.backend == "vault"
    assert status.pid == shared_agent.process.pid
    assert status.idle_lock_in_seconds is not None


def test_init_lock_unlock_and_change_passphrase(fresh_agent):
    with fresh_agent.client() as c:
        assert c.status().state == "uninitialized"
        with pytest.raises(errors.VaultNotInitializedError):
            c.authenticate("default")
        c.init(bytearray(PASSPHRASE), work_factor=10)
        session = c.authenticate("default")
        c.store(session, "k", b"v")
        c.lock()
        assert c.status().state == "locked"
        with pytest.raises(errors.VaultLockedError) as locked:
            c.authenticate("default")
        assert locked.value.code == "VAULT_LOCKED"
        with pytest.raises(errors.VaultLockedError):  # the vault is checked before the session
            c.retrieve(session, "k")
        with pytest.raises(errors.AuthenticationFailedError):
            c.unlock(b"wrong")
        c.unlock(PASSPHRASE)
        with pytest.raises(errors.SessionTerminatedError):  # locking ended it
            c.retrieve(session, "k")
        c.change_passphrase(PASSPHRASE, "é new".encode())
        c.lock()
        c.unlock("é new".encode())
        assert c.retrieve(c.authenticate("default"), "k").value == b"v"


def test_authenticate_sends_wait_for_unlock_only_when_asked(shared_agent):
    from avp_agent import _ops

    assert b"wait_for_unlock" not in _ops.authenticate("w", None, None, False).line
    assert b'"wait_for_unlock":true' in _ops.authenticate("w", None, None, True).line
    # An unlocked vault answers at once either way.
    with shared_agent.client() as c:
        assert c.authenticate("w", wait_for_unlock=True).workspace == "w"


def test_expiry_is_kept_set_and_cleared(shared_agent):
    later = datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with shared_agent.client() as c:
        s = c.authenticate("client/expiry")
        c.store(s, "k", b"1", expires_at=later)
        c.store(s, "k", b"2")
        assert c.retrieve(s, "k").expires_at == later
        c.store(s, "k", b"3", expires_at=avp_agent.CLEAR_EXPIRY)
        assert c.retrieve(s, "k").expires_at is None
        # A naive datetime is UTC, as avp-sdk makes them.
        c.store(s, "k", b"4", expires_at=later.replace(tzinfo=None) + timedelta(hours=1))
        assert c.retrieve(s, "k").expires_at == later + timedelta(hours=1)


def test_errors_are_one_class_per_code_under_one_base(shared_agent):
    assert len(errors.ERRORS_BY_CODE) == 20
    for code, cls in errors.ERRORS_BY_CODE.items():
        assert issubclass(cls, errors.AVPError) and cls.code == code
    with shared_agent.client() as c:
        s = c.authenticate("client/errors")
        with pytest.raises(KeyError) as missing:  # SecretNotFoundError is a KeyError too
            c.retrieve(s, "missing")
    err = missing.value
    assert isinstance(err, errors.SecretNotFoundError) and isinstance(err, errors.NotFoundError)
    assert str(err).startswith("SECRET_NOT_FOUND: ")


def test_no_value_or_session_id_in_reprs(shared_agent):
    with shared_agent.client() as c:
        session = c.authenticate("client/repr")
        c.store(session, "k", b"hunter2")
        secret = c.retrieve(session, "k")
    assert secret.value == b"hunter2"
    assert "hunter2" not in repr(secret) and "7 bytes" in repr(secret)
    assert session.session_id not in repr(session)


def test_one_connection_serves_many_requests_and_threads(shared_agent):
    import threading

    with shared_agent.client() as c:
        s = c.authenticate("client/threads")
        c.store(s, "k", b"v")
        failures = []

        def worker():
            for _ in range(50):
                if c.retrieve(s, "k").value != b"v":
                    failures.append(1)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures


def test_no_agent_is_a_clear_error(tmp_path):
    with pytest.raises(errors.NoAgentError) as info:
        avp_agent.Client(tmp_path / "agent.sock")
    assert "no agent answers on" in str(info.value)
    assert "no socket there" in str(info.value)
    assert isinstance(info.value, ConnectionError)


def test_a_hung_agent_is_a_timeout_not_a_hang(tmp_path):
    import asyncio
    import os
    import socket

    import avp_agent.aio

    os.chmod(tmp_path, 0o700)
    path = str(tmp_path / "hung.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)  # accepts (in the backlog) and never answers
    try:
        client = avp_agent.Client(path, timeout=0.2)
        with pytest.raises(errors.NoAgentError, match="did not answer in time"):
            client.status()

        async def ask():
            agent = await avp_agent.aio.Client.connect(path, timeout=0.2)
            await agent.status()

        with pytest.raises(errors.NoAgentError, match="did not answer in time"):
            asyncio.run(ask())
    finally:
        listener.close()
