"""Periodic schedules' records on the SQLite broker (:class:`ScheduleRecords`): table
``schedule_ticks``, changed with the enqueue in one write transaction. A mixin of
:class:`~tinyq_sqlite.SqliteBroker`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tinyq_core.plugin import EnqueueError, Message, ScheduleRecords

from ._db import Database, StoreFull
from ._waiting import JOBS, Wakeups

# The record moves forward only: a tick at or before the recorded one changes no row.
_RECORD = """INSERT INTO schedule_ticks (queue, schedule, tick) VALUES (?, ?, ?)
    ON CONFLICT (queue, schedule) DO UPDATE SET tick = excluded.tick
    WHERE excluded.tick > schedule_ticks.tick"""


class SqliteSchedules(ScheduleRecords):
    if TYPE_CHECKING:  # provided by SqliteBroker
        _db: Database
        _wakeups: Wakeups

    def claim_tick(
        self,
        queue: str,
        schedule: str,
        tick: float,
        message: Message | None = None,
        *,
        durable: bool = False,
    ) -> bool:
        from ._broker import _ADD_JOB, _ADD_QUEUE  # enqueue's own (imported here: a cycle)

        tick = round(tick * 1000) / 1000

        def work(conn: sqlite3.Connection) -> bool:
            if conn.execute(_RECORD, (queue, schedule, tick)).rowcount == 0:
                return False
            if message is not None:
                now = time.time()
                conn.execute(_ADD_QUEUE, (queue,))
                conn.execute(_ADD_JOB, (queue, message.id, message.body,
                                       now if message.due is None else max(message.due, now),
                                       queue, message.id, now))
            return True

        try:
            won = self._db.write(work, durable=durable)
        except StoreFull as exc:  # rolled back: neither the record nor the job
            raise EnqueueError(str(exc)) from None
        if won and message is not None:
            self._wakeups.notify(JOBS)
        return won

    def last_ticks(self, queue: str, schedules: Sequence[str]) -> dict[str, float]:
        names = list(dict.fromkeys(schedules))
        if not names:
            return {}

        def work(conn: sqlite3.Connection) -> dict[str, float]:
            marks = ", ".join("?" * len(names))
            rows = conn.execute(f"SELECT schedule, tick FROM schedule_ticks WHERE queue = ? "
                                f"AND schedule IN ({marks})", (queue, *names)).fetchall()
            return {str(name): float(tick) for name, tick in rows}

        return self._db.read(work)
