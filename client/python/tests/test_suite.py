"""The package's own backends pass avp_agent.testing.BackendTestSuite against the real agent:
the blocking client, and the asyncio client through a small synchronous wrapper."""

import asyncio
from typing import Any, Iterator

import pytest

import avp_agent
import avp_agent.aio
from avp_agent.testing import BackendTestSuite


class TestClient(BackendTestSuite):
    @pytest.fixture
    def backend(self, shared_agent) -> Iterator[avp_agent.Client]:
        with shared_agent.client() as client:
            yield client


class _SyncOverAsync:
    """Runs each coroutine method of an ``aio.Client`` to completion on a private loop."""

    def __init__(self, socket: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(avp_agent.aio.Client.connect(socket))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call

    def shutdown(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()


class TestAsyncClient(BackendTestSuite):
    @pytest.fixture
    def backend(self, shared_agent) -> Iterator[_SyncOverAsync]:
        backend = _SyncOverAsync(shared_agent.socket)
        yield backend
        backend.shutdown()
