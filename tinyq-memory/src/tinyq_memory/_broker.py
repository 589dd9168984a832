"""The in-memory broker and result backend (``memory://``): one process, thread-safe.

It keeps the real brokers' semantics so tests of tasks and workers mean something: leases that
expire and are recovered, delivery counts, delayed messages, nack with delay, dead letters,
queue priority, blocking reserve on a condition variable (no polling) and, with
``set_available(False)``, a broker that is down and raises :class:`BrokerUnavailable`; with
``refuse_values_over(size)``, one that drops every call carrying a larger value, as Redis does.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import time
from collections.abc import Sequence

import attrs

from tinyq_core.plugin import (
    Broker,
    DeadLetter,
    Delivery,
    EnqueueError,
    JobStatus,
    Message,
    Result,
)

from ._admin import MemoryAdmin, _Lease
from ._async import MemoryAsyncTier
from ._cancel import MemoryCancel
from ._clock import Clock
from ._limits import MemoryJobLimits
from ._registry import MemoryRegistry
from ._results import MemoryResultBackend, _Base
from ._schedules import MemorySchedules
from ._unique import MemoryUniqueLocks
from ._workflows import MemoryChordRecords


class MemoryBroker(MemoryAdmin, MemoryRegistry, MemoryUniqueLocks, MemorySchedules, MemoryCancel,
                   MemoryJobLimits, MemoryAsyncTier, MemoryChordRecords, _Base, Broker):
    """A broker living in this process. ``visibility_timeout`` is the lease in seconds."""

    def __init__(self, visibility_timeout: float = 30.0, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.visibility_timeout = visibility_timeout
        self._ready: dict[str, collections.deque[tuple[int, Message, int]]] = (
            collections.defaultdict(collections.deque)
        )
        self._delayed: list[tuple[float, int, Message]] = []  # heap of (due, key, message)
        self._leases: dict[int, _Lease] = {}
        self._dead: dict[str, list[DeadLetter]] = collections.defaultdict(list)
        self._status: dict[tuple[str, str], JobStatus] = {}  # (queue, job id)
        self._known: set[str] = set()  # every queue a message was sent to (admin queues())
        self._workers = {}
        self._ticks = {}
        self._keys = itertools.count(1)
        self._results = MemoryResultBackend(self.clock)
        self._interrupts = 0  # counts interrupt_reserves() calls
        self._capacity: int | None = None  # see set_capacity()
        self._cancel_requests = {}  # see MemoryCancel

    def interrupt_reserves(self) -> None:
        """Make every ``reserve`` blocked on this broker return now, with what is ready (maybe
        nothing), as if its timeout had passed. A worker stopped meanwhile then notices at once
        instead of at the end of its blocking read: the ``tinyq_worker`` fixture calls it after
        stopping its worker, so that a test's teardown does not wait for that read."""
        with self._cond:
            self._interrupts += 1
            self._cond.notify_all()

    def set_available(self, available: bool) -> None:
        """Simulate an outage: while unavailable, every operation raises BrokerUnavailable."""
        with self._cond:
            self._available = self._results._available = available
            self._cond.notify_all()

    def set_capacity(self, capacity: int | None) -> None:
        """Simulate a full broker (Redis at ``maxmemory``): while ``capacity`` messages are
        queued, delayed or leased, ``enqueue`` takes no more and raises EnqueueError naming
        the ones of its batch that went in. ``None`` (the default) lifts the limit."""
        with self._cond:
            self._capacity = capacity

    def refuse_values_over(self, size: int | None) -> None:
        """Simulate a server's limit on one value (Redis' ``proto-max-bulk-len``): a call
        carrying a body, result or text over ``size`` bytes fails whole with
        BrokerUnavailable, as Redis drops the connection; ``None`` lifts the limit."""
        with self._cond:
            self._largest = self._results._largest = size

    def ping(self) -> None:
        with self._cond:
            self._check()

    def result_backend(self) -> MemoryResultBackend:
        return self._results

    def _put(self, message: Message, attempts: int = 0) -> None:
        key = next(self._keys)
        if message.due is not None and message.due > self.clock.time():
            heapq.heappush(self._delayed, (message.due, key, message))
            self._status[message.queue, message.id] = "scheduled"
            return
        self._ready[message.queue].append((key, message, attempts))
        self._status[message.queue, message.id] = "queued"

    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        # durable: there is no replica to wait for; the messages are in this process.
        with self._cond:
            self._check()
            self._check_sizes(*(message.body for message in messages))
            self._known.update(message.queue for message in messages)
            try:
                for index, message in enumerate(messages):
                    # A job id still queued, delayed or leased is skipped: a retried enqueue;
                    # so is one whose result is still stored: it ran (a replay).
                    if (message.queue, message.id) not in self._status and (
                            self._results.get(message.id, 0, message.queue) is None):
                        if self._capacity is not None and len(self._status) >= self._capacity:
                            raise EnqueueError(
                                f"the memory broker is full ({self._capacity:,} messages, "
                                "set_capacity()); make room or lift the limit",
                                enqueued_ids=[m.id for m in messages[:index]],
                            )
                        self._put(message)
            finally:
                self._cond.notify_all()

    def _move_due_locked(self) -> float | None:
        now = self.clock.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, message = heapq.heappop(self._delayed)
            self._put(attrs.evolve(message, due=None))
        return self._delayed[0][0] if self._delayed else None

    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._cond:
            interrupts = self._interrupts
            while True:
                self._check()
                next_due = self._move_due_locked()
                out: list[Delivery] = []
                for queue in queues:
                    ready = self._ready.get(queue)
                    while ready and len(out) < count:
                        key, message, attempts = ready.popleft()
                        lease = _Lease(message, attempts + 1,
                                       self.clock.time() + self.visibility_timeout)
                        self._leases[key] = lease
                        self._status[message.queue, message.id] = "started"
                        out.append(Delivery(message, lease.attempts, key))
                if out or count <= 0 or self._interrupts != interrupts:
                    return out
                if not self._wait(deadline, next_due):
                    return out

    def renew(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        lost = []
        with self._cond:
            self._check()
            expires = self.clock.time() + self.visibility_timeout
            for delivery in deliveries:
                lease = self._leases.get(delivery.receipt)
                if lease is not None:
                    lease.expires = expires
                else:
                    lost.append(delivery)
        return lost

    def _release(self, delivery: Delivery) -> _Lease | None:
        lease = self._leases.pop(delivery.receipt, None)
        if lease is not None:
            self._status.pop((lease.message.queue, lease.message.id), None)
        return lease

    def ack(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        with self._cond:
            self._check()
            return [d for d in deliveries if self._release(d) is None]

    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        with self._cond:
            self._check()
            self._check_sizes(body or b"")
            if self._release(delivery) is None:
                return  # no longer ours: its lease expired and it is queued or leased again
            message = delivery.message
            due = self.clock.time() + delay if delay > 0 else None
            # ``is None``, not ``or``: an empty body is a new body too.
            new_body = message.body if body is None else body
            self._put(attrs.evolve(message, body=new_body, due=due))
            self._cond.notify_all()

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
        # verified=False changes nothing here: a message gets in only through enqueue, which
        # never adds an id that is still queued or leased, so its status entry is its own.
        with self._cond:
            self._check()
            self._check_sizes(delivery.message.body, reason, error,
                              result.body if result is not None else b"")
            lease = self._release(delivery)
            if lease is None:
                return
            if result is not None and self._results.succeeded(delivery.queue, delivery.id):
                return  # it ran twice and succeeded once: settled, not a dead letter
            if result is not None:  # under this lock: seen no earlier than the dead letter
                self._results.store([result], result_ttl)
            message = attrs.evolve(lease.message, body=delivery.message.body)
            self._dead[delivery.queue].append(
                DeadLetter(message, reason, error, lease.attempts, self.clock.time())
            )

    def recover(self, queues: Sequence[str]) -> int:
        with self._cond:
            self._check()
            now, wanted = self.clock.time(), set(queues)
            expired = [
                (key, lease)
                for key, lease in self._leases.items()
                if lease.expires <= now and lease.message.queue in wanted
            ]
            for key, lease in expired:
                del self._leases[key]
                # To the back of the queue, as the Redis broker does.
                self._put(lease.message, lease.attempts)
            if expired:
                self._cond.notify_all()
            return len(expired)

    def move_due(self, queues: Sequence[str]) -> float | None:
        with self._cond:
            self._check()
            self._move_due_locked()
            self._cond.notify_all()
            wanted = set(queues)
            dues = [due for due, _, message in self._delayed if message.queue in wanted]
            return max(0.0, min(dues) - self.clock.time()) if dues else None
