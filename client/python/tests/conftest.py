import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from agent import Agent  # noqa: E402


@pytest.fixture(scope="session")
def shared_agent() -> Iterator[Agent]:
    """One initialized, unlocked agent for the tests that do not lock it or change it."""
    agent = Agent().init()
    yield agent
    agent.stop()


@pytest.fixture
def fresh_agent() -> Iterator[Agent]:
    """An agent of its own, with no vault yet, for tests that lock, unlock or init."""
    agent = Agent()
    yield agent
    agent.stop()
