"""Rate and concurrency limits on the memory broker (:class:`JobLimits`). A mixin of
:class:`~tinyq_memory.MemoryBroker`: the state lives beside its messages, under its condition,
on its clock (a FakeClock in tests)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tinyq_core.plugin import JobLimits

from ._clock import Clock

BOOKING_KEPT = 60.0  # seconds a booking is remembered after its slot (a re-sent call)


class MemoryJobLimits(JobLimits):
    if TYPE_CHECKING:  # provided by MemoryBroker
        clock: Clock
        _cond: threading.Condition

        def _check(self) -> None: ...

    @property
    def _limit_state(self) -> dict[str, dict]:  # type: ignore[type-arg]
        """Made on first use (MemoryBroker's __init__ is not ours): ``tat`` (queue, key) ->
        the theoretical arrival time (GCRA); ``booked`` (queue, key, token) -> slot;
        ``slots`` (queue, key) -> {holder: lease expiry}."""
        state: dict[str, dict] = self.__dict__.setdefault(  # type: ignore[type-arg]
            "_job_limits", {"tat": {}, "booked": {}, "slots": {}})
        return state

    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        with self._cond:
            self._check()
            now = self.clock.time()
            state = self._limit_state
            booked: dict[tuple[str, str, str], float] = state["booked"]
            slot = booked.get((queue, key, token))
            if slot is not None:
                return max(0.0, slot - now)
            tat: float = state["tat"].get((queue, key), 0.0)
            slot = max(now, tat - (burst - 1) * interval)
            state["tat"][queue, key] = max(tat, now) + interval
            for old in [b for b, at in booked.items() if at < now - BOOKING_KEPT]:
                del booked[old]
            booked[queue, key, token] = slot
            return float(slot - now)

    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        with self._cond:
            self._check()
            now = self.clock.time()
            slots: dict[str, float] = self._limit_state["slots"].setdefault((queue, key), {})
            for expired in [h for h, until in slots.items() if until <= now]:
                del slots[expired]
            if holder not in slots and len(slots) >= limit:
                return False
            slots[holder] = now + lease_seconds
            return True

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        with self._cond:
            self._check()
            self._limit_state["slots"].get((queue, key), {}).pop(holder, None)
