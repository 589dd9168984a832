"""Rate and concurrency limits on the memory broker (:class:`JobLimits`). A mixin of
:class:`~tinyq_memory.MemoryBroker`: the state lives beside its messages, under its condition,
on its clock (a FakeClock in tests)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import attrs

from tinyq_core.plugin import JobLimits

from ._clock import Clock

BOOKING_KEPT = 60.0  # seconds a booking is remembered after its slot (a re-sent call)


@attrs.define
class _LimitState:
    tat: dict[tuple[str, str], float] = attrs.Factory(dict)  # the next slot of each key (GCRA)
    booked: dict[tuple[str, str, str], float] = attrs.Factory(dict)  # (queue, key, token)
    slots: dict[tuple[str, str], dict[str, float]] = attrs.Factory(dict)  # holder -> lease end
    swept: float = 0.0  # clock time old bookings were last forgotten


class MemoryJobLimits(JobLimits):
    if TYPE_CHECKING:  # provided by MemoryBroker
        clock: Clock
        _cond: threading.Condition

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
        with self._cond:
            self._check()
            now = self.clock.time()
            slots = self._limit_state.slots.setdefault((queue, key), {})
            for expired in [h for h, until in slots.items() if until <= now]:
                del slots[expired]
            if holder not in slots and len(slots) >= limit:
                return False
            slots[holder] = now + lease_seconds
            return True

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        with self._cond:
            self._check()
            self._limit_state.slots.get((queue, key), {}).pop(holder, None)
