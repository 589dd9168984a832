"""Rate and concurrency limits on the memory broker (:class:`JobLimits`). A mixin of
:class:`~tinyq_memory.MemoryBroker`: the state lives beside its messages, under its condition,
on its clock (a FakeClock in tests)."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from tinyq_core.plugin import JobLimits, Message

from ._clock import Clock

BOOKING_KEPT = 60.0  # seconds a booking is remembered after its slot (a re-sent call)
WAITER_GRACE = 10.0  # seconds a waiter found without a delayed job keeps its place


@attrs.define
class _LimitState:
    tat: dict[tuple[str, str], float] = attrs.Factory(dict)  # the next slot of each key (GCRA)
    booked: dict[tuple[str, str, str], float] = attrs.Factory(dict)  # (queue, key, token)
    slots: dict[tuple[str, str], dict[str, float]] = attrs.Factory(dict)  # holder -> lease end
    # (queue, key) -> its waiters and when each first waited, in that order
    waiters: dict[tuple[str, str], dict[str, float]] = attrs.Factory(dict)
    swept: float = 0.0  # clock time old bookings were last forgotten


class MemoryJobLimits(JobLimits):
    wakes_slot_waiters = True

    if TYPE_CHECKING:  # provided by MemoryBroker
        clock: Clock
        _cond: threading.Condition
        _delayed: list[tuple[float, int, Message]]

        def _check(self) -> None: ...

    @property
    def _limit_state(self) -> _LimitState:
        """Made on first use (MemoryBroker's __init__ is not ours)."""
        state: _LimitState = self.__dict__.setdefault("_job_limits", _LimitState())
        return state

    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        with self._cond:
            self._check()
            now = self.clock.time()
            state = self._limit_state
            booked = state.booked
            slot = booked.get((queue, key, token))
            if slot is not None:
                return max(0.0, slot - now)
            tat = state.tat.get((queue, key), 0.0)
            slot = max(now, tat - (burst - 1) * interval)
            state.tat[queue, key] = max(tat, now) + interval
            if now - state.swept > BOOKING_KEPT:  # once a minute: no scan per call
                state.swept = now
                for old in [b for b, at in booked.items() if at < now - BOOKING_KEPT]:
                    del booked[old]
            booked[queue, key, token] = slot
            return slot - now

    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        return self.acquire_slots([(queue, key, limit, holder, lease_seconds)])[0]

    def acquire_slots(self, requests: Sequence[tuple[str, str, int, str, float]], *,
                      wait: bool = False) -> list[bool]:
        with self._cond:
            self._check()
            return [self._acquire_locked(*request, wait) for request in requests]

    def _acquire_locked(self, queue: str, key: str, limit: int, holder: str,
                        lease_seconds: float, wait: bool) -> bool:
        now = self.clock.time()
        state = self._limit_state
        slots = state.slots.setdefault((queue, key), {})
        for expired in [h for h, until in slots.items() if until <= now]:
            del slots[expired]
        waiters = state.waiters.setdefault((queue, key), {})
        if holder not in slots and len(slots) >= limit:
            if wait:
                waiters.setdefault(holder, now)  # a waiter already keeps its place
            return False
        slots[holder] = now + lease_seconds
        if wait:
            waiters.pop(holder, None)
        return True

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        self.release_slots([(queue, key, holder)])

    def release_slots(self, slots: Sequence[tuple[str, str, str]]) -> None:
        with self._cond:
            self._check()
            state = self._limit_state
            for queue, key, holder in slots:
                if state.slots.get((queue, key), {}).pop(holder, None) is not None:
                    self._wake_first_locked(queue, state.waiters.get((queue, key), {}))

    def _wake_first_locked(self, queue: str, waiters: dict[str, float]) -> None:
        """Make the first waiter whose job is delayed due now; on the way, keep those whose
        give-back may be on its way (WAITER_GRACE), drop the older ones."""
        now = self.clock.time()
        for holder, since in list(waiters.items())[:10]:
            for index, (due, order, message) in enumerate(self._delayed):
                if message.queue == queue and message.id == holder and due > now:
                    del waiters[holder]
                    self._delayed[index] = (now, order, attrs.evolve(message, due=now))
                    heapq.heapify(self._delayed)
                    self._cond.notify_all()  # a reserve waiting for its due time looks again
                    return
            if since < now - WAITER_GRACE:
                del waiters[holder]
