"""The contract's tiers are real: a broker with the required tier only passes the required
tests, and the admin tests skip for it instead of failing."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import pytest

from tinyq_core.plugin import Broker, Delivery, Message, Result
from tinyq_core.testing import BrokerContract
from tinyq_core.testing._admin import AdminContract
from tinyq_core.testing._async import AsyncContract
from tinyq_core.testing._cancel import CancelContract
from tinyq_core.testing._limits import LimitsContract
from tinyq_core.testing._lookup import LookupContract
from tinyq_core.testing._progress import ProgressContract
from tinyq_core.testing._registry import RegistryContract
from tinyq_core.testing._results import ResultsContract
from tinyq_core.testing._schedules import ScheduleContract
from tinyq_core.testing._support import ContractBase
from tinyq_core.testing._unique import UniqueContract
from tinyq_core.testing._workflows import ChordContract
from tinyq_core.testing.contract import REQUIRED_TIER
from tinyq_memory import FakeClock, MemoryBroker, MemoryResultBackend


class RequiredOnlyBroker(Broker):
    """The memory broker seen through the required ``Broker`` methods and its result backend
    only: no admin tier, and the default wait_for_delayed and settle_and_reserve."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryBroker(visibility_timeout=5, clock=clock)
        self.visibility_timeout = self.inner.visibility_timeout

    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        self.inner.enqueue(messages, durable=durable)

    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        return self.inner.reserve(queues, count, timeout)

    def renew(self, deliveries: Sequence[Delivery]) -> None:
        self.inner.renew(deliveries)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.inner.ack(deliveries)

    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        self.inner.nack(delivery, delay, body)

    def dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        error: str = "",
        *,
        result: Result | None = None,
        result_ttl: float = 0.0,
        verified: bool = True,
    ) -> None:
        self.inner.dead_letter(delivery, reason, error, result=result, result_ttl=result_ttl,
                               verified=verified)

    def recover(self, queues: Sequence[str]) -> int:
        return self.inner.recover(queues)

    def move_due(self, queues: Sequence[str]) -> float | None:
        return self.inner.move_due(queues)

    def result_backend(self) -> MemoryResultBackend:
        return self.inner.result_backend()


def _clock(broker: Broker) -> FakeClock:
    assert isinstance(broker, RequiredOnlyBroker) and isinstance(broker.inner.clock, FakeClock)
    return broker.inner.clock


class TestRequiredOnlyBroker(BrokerContract):
    @pytest.fixture
    def broker(self) -> RequiredOnlyBroker:
        return RequiredOnlyBroker(FakeClock())

    def advance(self, broker: Broker, seconds: float) -> None:
        _clock(broker).advance(seconds)

    def now(self, broker: Broker) -> float:
        return _clock(broker).time()


def _tests_of(part: type) -> dict[str, list[str]]:
    """The test methods a part of the contract defines, with the fixtures they take."""
    return {
        name: list(inspect.signature(function).parameters)
        for name, function in vars(part).items()
        if name.startswith("test_")
    }


def test_the_contract_is_made_of_the_tiers() -> None:
    assert set(BrokerContract.__bases__) == {*REQUIRED_TIER, ResultsContract, AdminContract,
                                             LookupContract, RegistryContract,
                                             ProgressContract, UniqueContract,
                                             ScheduleContract, CancelContract,
                                             LimitsContract, AsyncContract,
                                             ChordContract}


def test_required_tests_do_not_take_the_admin_fixture() -> None:
    # A required test taking it would be skipped for a broker without the admin tier.
    required = {name: args for part in REQUIRED_TIER for name, args in _tests_of(part).items()}
    assert len(required) > 20  # found them: the check below is not vacuous
    assert [name for name, args in required.items() if "admin" in args] == []


def test_every_admin_test_takes_the_admin_fixture() -> None:
    admin = _tests_of(AdminContract) | _tests_of(LookupContract)
    assert len(admin) > 10
    assert [name for name, args in admin.items() if "admin" not in args] == []


def test_every_registry_test_takes_the_registry_fixture() -> None:
    registry = _tests_of(RegistryContract)
    assert len(registry) >= 4
    assert [name for name, args in registry.items() if "registry" not in args] == []


def test_every_unique_test_takes_the_unique_fixture() -> None:
    # The fixture is what skips them for a broker without the UniqueLocks tier.
    unique = _tests_of(UniqueContract)
    assert len(unique) >= 8
    assert [name for name, args in unique.items() if "unique" not in args] == []


def test_every_limits_test_takes_the_limits_fixture() -> None:
    tests = _tests_of(LimitsContract)
    assert len(tests) >= 8
    assert [name for name, args in tests.items() if "limits" not in args] == []


def test_every_chord_test_takes_the_chords_fixture() -> None:
    tests = _tests_of(ChordContract)
    assert len(tests) >= 6
    assert [name for name, args in tests.items() if "chords" not in args] == []


def test_every_schedule_test_takes_the_schedules_fixture() -> None:
    tests = _tests_of(ScheduleContract)
    assert len(tests) >= 6
    assert [name for name, args in tests.items() if "schedules" not in args] == []


def test_the_admin_fixture_skips_for_a_broker_without_the_tier() -> None:
    with pytest.raises(pytest.skip.Exception, match="RequiredOnlyBroker is not a BrokerAdmin"):
        ContractBase.require_admin(RequiredOnlyBroker(FakeClock()))
    memory = MemoryBroker()
    assert ContractBase.require_admin(memory) is memory
