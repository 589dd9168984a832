"""Periodic schedules' records on the memory broker (:class:`ScheduleRecords`): the last tick
of each schedule, changed with the enqueue under the broker's one lock. A mixin of
:class:`~tinyq_memory.MemoryBroker`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tinyq_core.plugin import Message, ScheduleRecords


class MemorySchedules(ScheduleRecords):
    if TYPE_CHECKING:  # provided by MemoryBroker
        _cond: threading.Condition  # reentrant: enqueue() takes it again

        def _check(self) -> None: ...

        def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None: ...

    _ticks: dict[tuple[str, str], int]  # (queue, schedule): the last tick, in milliseconds

    def claim_tick(
        self,
        queue: str,
        schedule: str,
        tick: float,
        message: Message | None = None,
        *,
        durable: bool = False,
    ) -> bool:
        tick_ms = round(tick * 1000)
        with self._cond:
            self._check()
            recorded = self._ticks.get((queue, schedule))
            if recorded is not None and recorded >= tick_ms:
                return False
            if message is not None:
                self.enqueue([message])  # raises before the record changes: all or nothing
            self._ticks[queue, schedule] = tick_ms
            return True

    def last_ticks(self, queue: str, schedules: Sequence[str]) -> dict[str, float]:
        with self._cond:
            self._check()
            return {name: self._ticks[queue, name] / 1000 for name in schedules
                    if (queue, name) in self._ticks}
