"""The broker contract suite run against the memory broker, on a fake clock and on real time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tinyq_core import Broker
from tinyq_core.testing import BrokerContract
from tinyq_memory import FakeClock, MemoryBroker


def _clock(broker: Broker) -> FakeClock:
    assert isinstance(broker, MemoryBroker) and isinstance(broker.clock, FakeClock)
    return broker.clock


class TestMemoryBroker(BrokerContract):
    """Leases, due times and TTLs on a fake clock: the suite runs without sleeping for them."""

    @pytest.fixture
    def broker(self) -> MemoryBroker:
        return MemoryBroker(visibility_timeout=5, clock=FakeClock())

    @pytest.fixture
    def refusing_broker(
        self, broker: MemoryBroker
    ) -> Iterator[tuple[Broker, Callable[[], None]]]:
        broker.set_capacity(2500)
        yield broker, lambda: broker.set_capacity(None)

    def advance(self, broker: Broker, seconds: float) -> None:
        _clock(broker).advance(seconds)

    def now(self, broker: Broker) -> float:
        return _clock(broker).time()


class TestMemoryBrokerRealClock(BrokerContract):
    """The default, sleeping ``advance``, as a broker on a server uses it."""

    @pytest.fixture
    def broker(self) -> MemoryBroker:
        return MemoryBroker(visibility_timeout=0.2)
