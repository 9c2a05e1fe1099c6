"""avp_agent.sdk.AgentBackend under the real avp-sdk from PyPI: an avp-sdk program changes one
line (its backend) and everything else works against the agent, errors included."""

import json
import time

import pytest

avp = pytest.importorskip("avp", reason="avp-sdk is not installed: pip install './client/python[sdk]'")

from avp import AVPClient  # noqa: E402
from avp import errors as sdk_errors  # noqa: E402

from avp_agent.sdk import AgentBackend  # noqa: E402


def program(backend):
    """What an avp-sdk program does; only the backend it is given differs."""
    client = AVPClient(backend)
    session = client.authenticate(workspace="sdk/app")
    stored = client.store(session.session_id, "anthropic_api_key", b"sk-ant-123", labels={"env": "prod"})
    got = client.retrieve(session.session_id, "anthropic_api_key")
    rotated = client.rotate(session.session_id, "anthropic_api_key", b"sk-ant-456")
    listed = client.list_secrets(session.session_id, filter_labels={"env": "prod"})
    deleted = client.delete(session.session_id, "anthropic_api_key")
    try:
        client.retrieve(session.session_id, "anthropic_api_key")
        missing = None
    except sdk_errors.SecretNotFoundError as err:
        missing = err.code
    client.close()
    return stored, got, rotated, listed, deleted, missing


def test_an_avp_sdk_program_runs_on_the_agent(shared_agent):
    stored, got, rotated, listed, deleted, missing = program(AgentBackend(shared_agent.socket))
    assert (stored.created, stored.version) == (True, 1)
    assert (got.value, got.version) == (b"sk-ant-123", 1)
    assert rotated.version == 2
    assert [s.name for s in listed.secrets] == ["anthropic_api_key"]
    assert listed.secrets[0].metadata.labels == {"env": "prod"} and listed.secrets[0].value is None
    assert deleted.deleted is True
    assert missing == "SECRET_NOT_FOUND"
    # The secret really was in the agent: its audit log records every operation in sdk/app
    # (written by a flusher a moment later: poll, within a deadline).
    wanted = {"AUTHENTICATE", "STORE", "RETRIEVE", "ROTATE", "LIST", "DELETE", "TERMINATE"}
    deadline = time.monotonic() + 10
    while True:
        seen = {
            line["operation"]
            for line in map(json.loads, shared_agent.audit().splitlines())
            if line.get("workspace") == "sdk/app"
        }
        if wanted <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert wanted <= seen, wanted - seen


def test_the_same_program_on_memory_backend_for_comparison():
    stored, got, rotated, listed, deleted, missing = program(avp.MemoryBackend())
    assert (stored.created, got.value, rotated.version, deleted.deleted, missing) == (
        True,
        b"sk-ant-123",
        2,
        True,
        "SECRET_NOT_FOUND",
    )


def test_discover_and_limits_come_from_the_agent(shared_agent):
    backend = AgentBackend(shared_agent.socket)
    info = AVPClient(backend).discover()
    assert info.limits.max_secret_value_length == 65536
    assert info.capabilities.versioning and info.capabilities.rotation
    assert info.backends[0].id.startswith("avp-agent:")
    backend.close()


def test_versions_and_metadata(shared_agent):
    backend = AgentBackend(shared_agent.socket)
    backend.store("sdk/meta", "k", b"one", labels={"a": "b"})
    backend.store("sdk/meta", "k", b"two")
    assert backend.retrieve("sdk/meta", "k", version=1) == (b"one", 1)
    meta = backend.get_metadata("sdk/meta", "k")
    assert (meta.version, meta.labels) == (2, {"a": "b"})
    assert meta.created_at.tzinfo is None  # avp-sdk's naive UTC
    with pytest.raises(sdk_errors.SecretNotFoundError):
        backend.get_metadata("sdk/meta", "nope")
    with pytest.raises(sdk_errors.InvalidNameError):
        backend.store("sdk/meta", "1bad", b"v")
    backend.close()


def test_a_new_session_after_the_agent_ended_the_old_one(fresh_agent):
    from agent import PASSPHRASE

    fresh_agent.init()
    backend = AgentBackend(fresh_agent.socket)
    backend.store("sdk/relock", "k", b"v")
    with fresh_agent.client() as admin:
        admin.lock()  # ends every session
        admin.unlock(PASSPHRASE)
    assert backend.retrieve("sdk/relock", "k") == (b"v", 1)
    with fresh_agent.client() as admin:
        admin.lock()
    with pytest.raises(sdk_errors.AVPError) as locked:
        backend.retrieve("sdk/relock", "k")
    assert locked.value.code == "VAULT_LOCKED"
    backend.close()
