"""The admin tier of the memory broker (status, sizes, queues, purges, dead letters), kept
apart from the delivery path. A mixin of :class:`~tinyq_memory.MemoryBroker`: it works on the
broker's state, under its condition."""

from __future__ import annotations

import collections
import heapq
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from tinyq_core.plugin import (
    BrokerAdmin,
    DeadLetter,
    Delivery,
    JobStatus,
    Message,
    QueueCounts,
)

if TYPE_CHECKING:
    from ._results import MemoryResultBackend


@attrs.define
class _Lease:
    message: Message
    attempts: int
    expires: float


class MemoryAdmin(BrokerAdmin):
    if TYPE_CHECKING:  # provided by MemoryBroker
        _cond: threading.Condition
        _ready: dict[str, collections.deque[tuple[int, Message, int]]]
        _delayed: list[tuple[float, int, Message]]
        _leases: dict[int, _Lease]
        _dead: dict[str, list[DeadLetter]]
        _status: dict[tuple[str, str], JobStatus]
        _known: set[str]
        _results: MemoryResultBackend

        def _check(self) -> None: ...

        def _put(self, message: Message, attempts: int = 0) -> None: ...

    def status(self, job_id: str, queue: str = "default") -> JobStatus:
        with self._cond:
            self._check()
            return self._status.get((queue, job_id), "unknown")

    def size(self, queue: str) -> int:
        with self._cond:
            self._check()
            return len(self._ready.get(queue, ())) + sum(
                1 for _, _, m in self._delayed if m.queue == queue
            )

    def count_leased(self, queue: str) -> int:
        with self._cond:
            self._check()
            return sum(1 for lease in self._leases.values() if lease.message.queue == queue)

    def counts(self, queue: str) -> QueueCounts:
        with self._cond:
            self._check()
            scheduled = sum(1 for _, _, m in self._delayed if m.queue == queue)
            return QueueCounts(len(self._ready.get(queue, ())), scheduled,
                               self.count_leased(queue), len(self._dead.get(queue, ())))

    def queues(self) -> list[str]:
        with self._cond:
            self._check()
            names = set(self._known)
            names |= {q for q, ready in self._ready.items() if ready}
            names |= {m.queue for _, _, m in self._delayed}
            names |= {lease.message.queue for lease in self._leases.values()}
            names |= {q for q, letters in self._dead.items() if letters}
            return sorted(names)

    def message(self, job_id: str, queue: str = "default") -> Delivery | None:
        with self._cond:
            self._check()
            for _, message, _ in self._ready.get(queue, ()):
                if message.id == job_id:
                    return Delivery(message, 0)
            for _, _, message in self._delayed:
                if message.queue == queue and message.id == job_id:
                    return Delivery(message, 0)
            for key, lease in self._leases.items():
                if lease.message.queue == queue and lease.message.id == job_id:
                    return Delivery(lease.message, lease.attempts, key)
            return None

    def messages(self, queue: str, offset: int = 0, limit: int = 100) -> list[Message]:
        with self._cond:
            self._check()
            waiting = [message for _, message, _ in self._ready.get(queue, ())]
            waiting += [m for _, _, m in sorted(self._delayed) if m.queue == queue]
            return waiting[offset:offset + limit]

    def purge(self, queue: str) -> int:
        with self._cond:
            self._check()
            ready = self._ready.pop(queue, collections.deque())
            kept = [item for item in self._delayed if item[2].queue != queue]
            # Delayed ones are forgotten too, or status() would still say "scheduled".
            gone = [m for _, m, _ in ready] + [m for _, _, m in self._delayed if m.queue == queue]
            self._delayed = kept
            heapq.heapify(self._delayed)
            for message in gone:
                self._status.pop((message.queue, message.id), None)
            return len(gone)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        with self._cond:
            self._check()
            return list(self._dead.get(queue, [])[:limit])

    def requeue_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        with self._cond:
            self._check()
            letters = self._dead.get(queue, [])
            chosen = [d for d in letters if ids is None or d.message.id in ids]
            self._dead[queue] = [d for d in letters if d not in chosen]
            for letter in chosen:
                self._put(attrs.evolve(letter.message, due=None))
            self._results.forget(queue, [letter.message.id for letter in chosen])
            self._cond.notify_all()
            return len(chosen)

    def purge_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        with self._cond:
            self._check()
            if ids is None:
                return len(self._dead.pop(queue, []))
            letters = self._dead.get(queue, [])
            kept = [d for d in letters if d.message.id not in ids]
            self._dead[queue] = kept
            return len(letters) - len(kept)
