"""Unique jobs' locks on the memory broker (:class:`UniqueLocks`). A mixin of
:class:`~tinyq_memory.MemoryBroker`: the locks live beside its messages, under its condition,
and a lock holds while its owner's message is queued, delayed or leased (its status entry)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from tinyq_core.plugin import JobStatus, Message, UniqueLocks

from ._clock import Clock


@attrs.define
class _Lock:
    owner: str
    expires: float  # the record's bound (the ttl), whatever its job does
    keep_until: float | None = None  # set when its job finished with time to keep it


class MemoryUniqueLocks(UniqueLocks):
    if TYPE_CHECKING:  # provided by MemoryBroker
        clock: Clock
        _cond: threading.Condition
        _status: dict[tuple[str, str], JobStatus]

        def _check(self) -> None: ...

        def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None: ...

    @property
    def _locks(self) -> dict[tuple[str, str], _Lock]:
        """(queue, key) -> lock; made on first use (MemoryBroker's __init__ is not ours)."""
        locks: dict[tuple[str, str], _Lock] = self.__dict__.setdefault("_unique_locks", {})
        return locks

    def _holder(self, queue: str, key: str, now: float) -> str | None:
        """The job holding lock ``key`` now, if any; a lock that no longer holds is dropped."""
        lock = self._locks.get((queue, key))
        if lock is None:
            return None
        if lock.expires > now and ((queue, lock.owner) in self._status or (
                lock.keep_until is not None and lock.keep_until > now)):
            return lock.owner
        del self._locks[queue, key]
        return None

    def enqueue_unique(
        self, message: Message, key: str, ttl: float, *, durable: bool = False
    ) -> str:
        with self._cond:
            self._check()
            now = self.clock.time()
            holder = self._holder(message.queue, key, now)
            if holder is not None:
                return holder
            self.enqueue([message], durable=durable)  # the condition's lock is re-entrant
            self._locks[message.queue, key] = _Lock(message.id, now + ttl)
            return message.id

    def release_unique(self, queue: str, key: str, owner: str, keep_for: float = 0.0) -> None:
        with self._cond:
            self._check()
            lock = self._locks.get((queue, key))
            if lock is None or lock.owner != owner:
                return
            if keep_for > 0:
                now = self.clock.time()
                lock.keep_until = now + keep_for
                lock.expires = max(lock.expires, lock.keep_until)
            else:
                del self._locks[queue, key]
