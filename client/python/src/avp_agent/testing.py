"""``BackendTestSuite``: the AVP semantics (PROTOCOL.md §5, §9, §10) as pytest tests, runnable
against any backend with the AVP ``Backend`` interface of the custom-backend docs::

    discover() -> DiscoverInfo
    authenticate(workspace, ttl_seconds=None) -> Session            # .session_id, .workspace, .expires_at
    store(session_id, name, value, labels=None, expires_at=None)
    retrieve(session_id, name, version=None) -> Secret              # .name, .value, .version, .labels …
    delete(session_id, name)
    list(session_id, label_filter=None) -> list[SecretMetadata]     # every page
    rotate(session_id, name, new_value) -> RotateResult             # .previous_version, .new_version

plus, where the backend has them, ``terminate(session_id)`` and ``history(session_id, name)``.
Errors must carry the AVP code in a ``code`` attribute (``"SECRET_NOT_FOUND"`` …), as every AVP
SDK's errors do. Use it as the docs say ("Testing Your Backend")::

    import pytest
    from avp_agent.testing import BackendTestSuite

    class TestMyBackend(BackendTestSuite):
        @pytest.fixture
        def backend(self):
            return MyBackend(...)

Each test works in its own fresh workspace (the ``workspace`` fixture; override it if your
backend needs specific ids). Results that the docs' interface allows to be ``None`` (``store``,
``delete``) are checked only when the backend returns something.
"""

import secrets as _random
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Optional

import pytest

__all__ = ["BackendTestSuite", "code_of"]

MAX_VALUE = 65536


def code_of(err: BaseException) -> Optional[str]:
    """The AVP code an error carries."""
    return getattr(err, "code", None)


def _raises_code(code: str, call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    assert code_of(info.value) == code, f"expected {code}, got {info.value!r}"
    return info.value


def _now() -> datetime:
    return datetime.now(timezone.utc)


class BackendTestSuite:
    """Subclass it and provide a ``backend`` fixture."""

    @pytest.fixture
    def backend(self) -> Any:  # pragma: no cover - the subclass provides it
        raise NotImplementedError("subclass BackendTestSuite and provide a `backend` fixture")

    @pytest.fixture
    def workspace(self) -> str:
        """A workspace no other test uses."""
        return f"suite/{_random.token_hex(6)}"

    @pytest.fixture
    def session(self, backend: Any, workspace: str) -> Iterator[str]:
        yield backend.authenticate(workspace).session_id

    # --- DISCOVER and sessions (§9.1) --------------------------------------------------

    def test_discover_names_the_seven_operations(self, backend: Any) -> None:
        info = backend.discover()
        assert str(info.version)
        for op in ("DISCOVER", "AUTHENTICATE", "STORE", "RETRIEVE", "DELETE", "LIST", "ROTATE"):
            assert op in info.operations, op

    def test_authenticate_binds_a_session_to_its_workspace(self, backend: Any, workspace: str) -> None:
        session = backend.authenticate(workspace)
        assert session.session_id
        assert session.workspace == workspace
        assert session.expires_at > _now()

    def test_session_ttl_is_defaulted_and_clamped(self, backend: Any, workspace: str) -> None:
        default = backend.authenticate(workspace)
        assert timedelta(minutes=59) < default.expires_at - _now() <= timedelta(hours=1, seconds=5)
        short = backend.authenticate(workspace, ttl_seconds=60)
        assert short.expires_at - _now() <= timedelta(seconds=65)
        clamped = backend.authenticate(workspace, ttl_seconds=10 * 86400)
        assert clamped.expires_at - _now() <= timedelta(days=1, seconds=5)

    def test_bad_workspace_ids_are_invalid_workspace(self, backend: Any) -> None:
        for bad in ("", "/abs", "a//b", "a/", "a/../b", "..", "sp ace", "-x", "w" * 256):
            _raises_code("INVALID_WORKSPACE", lambda: backend.authenticate(bad))

    def test_an_unknown_session_is_session_not_found(self, backend: Any) -> None:
        for bogus in ("avp_sess_" + "0" * 64, "nonsense"):
            _raises_code("SESSION_NOT_FOUND", lambda: backend.retrieve(bogus, "x"))

    def test_a_terminated_session_is_refused(self, backend: Any, session: str) -> None:
        if not hasattr(backend, "terminate"):
            pytest.skip("the backend has no terminate")
        backend.store(session, "k", b"v")
        backend.terminate(session)
        _raises_code("SESSION_TERMINATED", lambda: backend.retrieve(session, "k"))

    def test_workspaces_are_isolated(self, backend: Any, workspace: str) -> None:
        parent = backend.authenticate(workspace).session_id
        child = backend.authenticate(workspace + "/job").session_id
        backend.store(parent, "shared", b"parent")
        _raises_code("SECRET_NOT_FOUND", lambda: backend.retrieve(child, "shared"))
        assert [m.name for m in backend.list(child)] == []
        backend.store(child, "shared", b"child")
        assert backend.retrieve(parent, "shared").value == b"parent"
        assert backend.retrieve(child, "shared").value == b"child"

    # --- STORE and RETRIEVE (§9.2, §9.3, §5) ---------------------------------------------

    def test_values_round_trip_byte_for_byte(self, backend: Any, session: str) -> None:
        for name, value in [
            ("empty", b""),
            ("binary", bytes(range(256))),
            ("newline", b"line\n"),
            ("largest", b"\xa5" * MAX_VALUE),
        ]:
            backend.store(session, name, value)
            secret = backend.retrieve(session, name)
            assert secret.name == name
            assert secret.value == value, name

    def test_store_versions_count_up_and_created_says_new(self, backend: Any, session: str) -> None:
        first = backend.store(session, "db.password", b"one")
        second = backend.store(session, "db.password", b"two")
        if first is not None:
            assert (first.created, first.version) == (True, 1)
            assert (second.created, second.version) == (False, 2)
        current = backend.retrieve(session, "db.password")
        assert (current.value, current.version) == (b"two", 2)
        older = backend.retrieve(session, "db.password", version=1)
        assert (older.value, older.version) == (b"one", 1)
        _raises_code("SECRET_NOT_FOUND", lambda: backend.retrieve(session, "db.password", version=3))

    def test_created_at_is_kept_and_updated_at_moves(self, backend: Any, session: str) -> None:
        backend.store(session, "k", b"1")
        first = backend.retrieve(session, "k")
        backend.store(session, "k", b"2")
        second = backend.retrieve(session, "k")
        assert second.created_at == first.created_at
        assert second.updated_at >= first.updated_at

    def test_a_missing_secret_is_secret_not_found(self, backend: Any, session: str) -> None:
        _raises_code("SECRET_NOT_FOUND", lambda: backend.retrieve(session, "missing"))

    def test_bad_names_are_invalid_name(self, backend: Any, session: str) -> None:
        for bad in ("", "1st", "_x", ".hidden", "a b", "a/b", "key\n", "é", "n" * 256):
            _raises_code("INVALID_NAME", lambda: backend.store(session, bad, b"v"))
            _raises_code("INVALID_NAME", lambda: backend.retrieve(session, bad))
        longest = "n" * 255
        backend.store(session, longest, b"v")
        assert backend.retrieve(session, longest).value == b"v"

    def test_an_oversized_value_is_value_too_large(self, backend: Any, session: str) -> None:
        _raises_code("VALUE_TOO_LARGE", lambda: backend.store(session, "big", b"x" * (MAX_VALUE + 1)))
        _raises_code("SECRET_NOT_FOUND", lambda: backend.retrieve(session, "big"))

    def test_labels_are_kept_replaced_and_cleared(self, backend: Any, session: str) -> None:
        backend.store(session, "k", b"1", labels={"env": "prod", "team": "a"})
        assert backend.retrieve(session, "k").labels == {"env": "prod", "team": "a"}
        backend.store(session, "k", b"2")
        assert backend.retrieve(session, "k").labels == {"env": "prod", "team": "a"}
        backend.store(session, "k", b"3", labels={"env": "dev"})
        assert backend.retrieve(session, "k").labels == {"env": "dev"}
        backend.store(session, "k", b"4", labels={})
        assert backend.retrieve(session, "k").labels == {}

    def test_more_than_64_labels_is_capacity_exceeded(self, backend: Any, session: str) -> None:
        labels = {f"l{i}": "v" for i in range(65)}
        _raises_code("CAPACITY_EXCEEDED", lambda: backend.store(session, "k", b"v", labels=labels))
        labels.popitem()
        backend.store(session, "k", b"v", labels=labels)

    def test_expiry_in_the_past_is_refused(self, backend: Any, session: str) -> None:
        past = _now() - timedelta(minutes=1)
        _raises_code("INVALID_REQUEST", lambda: backend.store(session, "k", b"v", expires_at=past))

    def test_an_expired_secret_is_gone(self, backend: Any, session: str) -> None:
        soon = (_now() + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
        backend.store(session, "short", b"v", expires_at=soon)
        assert backend.retrieve(session, "short").expires_at == soon
        deadline = time.monotonic() + 15
        while True:  # poll until the expiry passes, within a deadline
            try:
                backend.retrieve(session, "short")
            except Exception as err:
                assert code_of(err) == "SECRET_NOT_FOUND", repr(err)
                break
            assert time.monotonic() < deadline, "the secret did not expire"
            time.sleep(0.05)
        assert [m.name for m in backend.list(session)] == []
        _raises_code("SECRET_NOT_FOUND", lambda: backend.rotate(session, "short", b"w"))
        backend.store(session, "short", b"again")
        assert backend.retrieve(session, "short").version == 1

    # --- ROTATE, DELETE, HISTORY (§9.3–§9.5) ---------------------------------------------

    def test_rotate_makes_a_new_version_and_keeps_labels(self, backend: Any, session: str) -> None:
        backend.store(session, "api", b"old", labels={"env": "prod"})
        result = backend.rotate(session, "api", b"new")
        assert (result.previous_version, result.new_version) == (1, 2)
        secret = backend.retrieve(session, "api")
        assert (secret.value, secret.version, secret.labels) == (b"new", 2, {"env": "prod"})

    def test_rotate_of_a_missing_secret_is_secret_not_found(self, backend: Any, session: str) -> None:
        _raises_code("SECRET_NOT_FOUND", lambda: backend.rotate(session, "missing", b"v"))

    def test_delete_removes_every_version_and_names_restart_at_1(self, backend: Any, session: str) -> None:
        backend.store(session, "k", b"1")
        backend.store(session, "k", b"2")
        deleted = backend.delete(session, "k")
        if deleted is not None:
            assert deleted is True
        _raises_code("SECRET_NOT_FOUND", lambda: backend.retrieve(session, "k"))
        _raises_code("SECRET_NOT_FOUND", lambda: backend.retrieve(session, "k", version=1))
        again = backend.delete(session, "k")
        if again is not None:
            assert again is False
        backend.store(session, "k", b"3")
        assert backend.retrieve(session, "k").version == 1

    def test_history_lists_versions_oldest_first_without_values(self, backend: Any, session: str) -> None:
        if not hasattr(backend, "history"):
            pytest.skip("the backend has no history")
        for value in (b"a", b"b", b"c"):
            backend.store(session, "k", value)
        history = backend.history(session, "k")
        assert [v.version for v in history.versions] == [1, 2, 3]
        assert not any(hasattr(v, "value") for v in history.versions)

    # --- LIST (§9.6) ---------------------------------------------------------------------

    def test_list_is_sorted_metadata_only(self, backend: Any, session: str) -> None:
        for name in ("b", "a", "C", "a.b"):
            backend.store(session, name, b"secret-" + name.encode())
        listed = backend.list(session)
        assert [m.name for m in listed] == ["C", "a", "a.b", "b"]  # byte order
        for meta in listed:
            assert getattr(meta, "value", None) is None
            assert meta.version == 1

    def test_list_filters_on_every_label(self, backend: Any, session: str) -> None:
        backend.store(session, "p1", b"v", labels={"env": "prod", "team": "a"})
        backend.store(session, "p2", b"v", labels={"env": "prod"})
        backend.store(session, "d1", b"v", labels={"env": "dev", "team": "a"})
        backend.store(session, "none", b"v")
        assert [m.name for m in backend.list(session, label_filter={"env": "prod"})] == ["p1", "p2"]
        both = backend.list(session, label_filter={"env": "prod", "team": "a"})
        assert [m.name for m in both] == ["p1"]
        assert [m.name for m in backend.list(session, label_filter={"env": "qa"})] == []
        assert len(backend.list(session, label_filter={})) == 4

    def test_list_returns_every_page(self, backend: Any, session: str) -> None:
        names = [f"s{i:03d}" for i in range(230)]  # more than two default pages of 100
        for name in names:
            backend.store(session, name, b"v")
        assert [m.name for m in backend.list(session)] == names
