"""What every part of the broker contract shares: real-time bounds, uuid-named queues and
messages, a helper thread, and the base class with the hooks and fixtures a plugin overrides.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from .._errors import ConfigurationError
from .._interfaces import Broker, BrokerAdmin, ResultBackend, WorkerRegistry
from .._types import Delivery, Message

# Real-time bounds, generous on purpose: they tell "woke up" from "waited out the timeout" and
# "waited" from "returned at once", and must not flake on a loaded CI machine.
ACT_AFTER = 0.2  # when a helper thread enqueues or stores while the test is blocked
LONG_WAIT = 5.0  # a timeout that a wake-up must cut short...
WOKE_WITHIN = 2.5  # ...returning before this (plus the broker's poll_interval, if it polls)
SHORT_WAIT = 0.5  # a timeout that must run its course when nothing arrives
AT_ONCE = 1.0  # a non-blocking call returns within this
GRACE = 2.0  # timeout of a reserve that expects messages: returns at once when they are there


def new_queue() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


def new_message(queue: str, body: bytes | None = None, due: float | None = None) -> Message:
    job_id = uuid.uuid4().hex
    return Message(job_id, queue, f"body-{job_id}".encode() if body is None else body, due)


@contextlib.contextmanager
def later(action: Callable[[], object], delay: float = ACT_AFTER) -> Iterator[None]:
    """Run ``action`` in another thread ``delay`` real seconds from now. On leaving, wait for it
    and re-raise its error, so a failing helper fails the test instead of passing silently."""
    errors: list[BaseException] = []

    def run() -> None:
        time.sleep(delay)
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="contract-helper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=30)
    if errors:
        raise errors[0]


def wake_bound(broker: Broker) -> float:
    """How long a blocked call may take to notice a message: a polling broker looks again only
    every ``poll_interval`` seconds."""
    return WOKE_WITHIN + (broker.poll_interval or 0.0)


class ContractBase:
    """The hooks and fixtures of :class:`BrokerContract` and the steps its tests share."""

    # True for a broker that cannot confirm a durable enqueue where it runs (it needs a replica
    # and has none, as a single Redis server): ``enqueue(..., durable=True)`` must then raise
    # BrokerError. False: it must return with the messages enqueued.
    durable_enqueue_refused: bool = False

    def advance(self, broker: Broker, seconds: float) -> None:
        """Let ``seconds`` pass for leases, due times and TTLs. Sleeps unless overridden."""
        time.sleep(seconds)

    def now(self, broker: Broker) -> float:
        """The broker's current Unix time, the scale of ``Message.due``."""
        return time.time()

    @pytest.fixture
    def results(self, broker: Broker) -> ResultBackend:
        """The broker's own result backend; tests that need one are skipped without it."""
        try:
            return broker.result_backend()
        except ConfigurationError:
            pytest.skip(f"{type(broker).__name__} has no result backend")

    @pytest.fixture
    def admin(self, broker: Broker) -> BrokerAdmin:
        """The broker as its admin tier; admin tests are skipped for a broker without it."""
        return self.require_admin(broker)

    @pytest.fixture
    def registry(self, broker: Broker) -> WorkerRegistry:
        """The broker as its worker-registry tier; those tests are skipped without it."""
        if not isinstance(broker, WorkerRegistry):
            pytest.skip(f"{type(broker).__name__} is not a WorkerRegistry: tier not offered")
        return broker

    @pytest.fixture
    def second_broker(self, broker: Broker) -> Broker:
        """Optional: another broker instance on the same store as ``broker``, as a second
        process would open it (same server, same key prefix). Without it, the tests that
        need it are skipped."""
        pytest.skip(f"no second_broker fixture for {type(broker).__name__} (optional)")

    @pytest.fixture
    def refusing_broker(self, broker: Broker) -> Iterator[tuple[Broker, Callable[[], None]]]:
        """Optional: ``broker`` set up to refuse part of a batch of 6,000 small messages (out
        of memory or space, as Redis at ``maxmemory``), and a function that makes room again.
        Without it, the tests that need it are skipped."""
        pytest.skip(f"no refusing_broker fixture for {type(broker).__name__} (optional)")

    @staticmethod
    def require_admin(broker: Broker) -> BrokerAdmin:
        if not isinstance(broker, BrokerAdmin):
            pytest.skip(f"{type(broker).__name__} is not a BrokerAdmin: admin tier not offered")
        return broker

    def expire_leases(self, broker: Broker) -> None:
        """Let every lease taken so far expire, with a margin for brokers on real time."""
        self.advance(broker, broker.visibility_timeout * 1.25)

    def reserve_exactly(self, broker: Broker, queue: str, count: int) -> list[Delivery]:
        deliveries = broker.reserve([queue], count, GRACE)
        assert len(deliveries) == count, f"expected {count} deliveries, got {deliveries}"
        return deliveries

    def reserve_all(self, broker: Broker, queue: str) -> list[str]:
        """Lease everything ``queue`` holds: the job ids, in order, repeats kept."""
        ids: list[str] = []
        while deliveries := broker.reserve([queue], 1000, GRACE if not ids else 0):
            ids += [d.id for d in deliveries]
        return ids

    def lease_twice(
        self, broker: Broker, queue: str, count: int
    ) -> list[tuple[Delivery, Delivery]]:
        """Enqueue ``count`` messages, lease them, let the leases expire and recover them,
        lease them again: ``(old, new)`` delivery pairs by job id. The old ones stand for
        consumers that stalled past their lease and will report late."""
        broker.enqueue([new_message(queue) for _ in range(count)])
        old = sorted(self.reserve_exactly(broker, queue, count), key=lambda d: d.id)
        self.expire_leases(broker)
        assert broker.recover([queue]) == count
        new = sorted(self.reserve_exactly(broker, queue, count), key=lambda d: d.id)
        assert [d.id for d in new] == [d.id for d in old]
        for before, after in zip(old, new, strict=True):
            assert after.attempts == before.attempts + 1
            # Each delivery has its own receipt: that is how a late report is told apart.
            assert after.receipt != before.receipt, "a redelivery reused the old receipt"
        return list(zip(old, new, strict=True))
