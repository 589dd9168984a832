"""pytest fixtures for testing tinyq tasks on the memory broker (loaded through ``pytest11``).

``tinyq_app`` is a fresh application on a memory broker with a fake clock; to test the tasks of
your own application, point it at ``tinyq_broker``::

    @pytest.fixture(autouse=True)
    def _memory(tinyq_broker):
        app.use_broker(tinyq_broker)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinyq_core import Application

from ._broker import MemoryBroker
from ._clock import FakeClock


@pytest.fixture
def tinyq_clock() -> FakeClock:
    """A clock that moves only when told to: ``tinyq_clock.advance(60)``."""
    return FakeClock()


@pytest.fixture
def tinyq_broker(tinyq_clock: FakeClock) -> MemoryBroker:
    """A fresh memory broker on the fake clock."""
    return MemoryBroker(clock=tinyq_clock)


@pytest.fixture
def tinyq_app(tinyq_broker: MemoryBroker) -> Iterator[Application]:
    """A fresh application on ``tinyq_broker``; run its jobs with ``tinyq_memory.drain(app)``."""
    app = Application(tinyq_broker)
    yield app
    app.close()
