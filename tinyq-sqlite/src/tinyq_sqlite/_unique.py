"""Unique jobs' locks on the SQLite broker (:class:`UniqueLocks`): table ``unique_locks``,
checked and taken with the job's insert in one write transaction. A lock holds while its
owner's row is in ``jobs`` (waiting, delayed or leased), or until ``keep_until``."""

from __future__ import annotations

import sqlite3
import time

from tinyq_core.plugin import EnqueueError, Message, UniqueLocks

from ._db import Database, StoreFull
from ._results import SWEEP_EVERY
from ._waiting import JOBS, Wakeups

_HOLDER = """SELECT owner FROM unique_locks AS lock WHERE queue = ?1 AND key = ?2
    AND expires > ?3 AND (keep_until > ?3
    OR EXISTS (SELECT 1 FROM jobs WHERE jobs.queue = ?1 AND jobs.id = lock.owner))"""
# Locks that no longer hold: swept now and then, as results are (a key is not always reused).
_SWEEP = """DELETE FROM unique_locks AS lock WHERE expires <= ?1
    OR (COALESCE(keep_until, 0) <= ?1 AND NOT EXISTS (SELECT 1 FROM jobs
        WHERE jobs.queue = lock.queue AND jobs.id = lock.owner))"""
_TAKE = """INSERT OR REPLACE INTO unique_locks (queue, key, owner, keep_until, expires)
    VALUES (?, ?, ?, NULL, ?)"""


class SqliteUniqueLocks(UniqueLocks):
    _db: Database
    _wakeups: Wakeups
    _locks_swept = 0.0  # time.monotonic() of the last sweep by this broker

    def enqueue_unique(
        self, message: Message, key: str, ttl: float, *, durable: bool = False
    ) -> str:
        # Here, not at the top: _broker imports this mixin.
        from ._broker import _ADD_JOB, _ADD_QUEUE

        queue = message.queue
        known = self._db.known_queues()

        def work(conn: sqlite3.Connection) -> str:
            now = time.time()
            row = conn.execute(_HOLDER, (queue, key, now)).fetchone()
            if row is not None:
                return str(row[0])
            due = now if message.due is None else max(message.due, now)
            conn.execute(_ADD_JOB, (queue, message.id, message.body, due, queue, message.id,
                                    now))
            conn.execute(_TAKE, (queue, key, message.id, now + ttl))
            if sweep:
                conn.execute(_SWEEP, (now,))
            return message.id

        sweep = time.monotonic() - self._locks_swept > SWEEP_EVERY

        try:
            if queue not in known:  # as enqueue: the queue's row first, on its own
                self._db.write_one(_ADD_QUEUE, (queue,))
                known.add(queue)
            holder = self._db.write(work, durable=durable)
        except StoreFull as exc:
            raise EnqueueError(str(exc)) from None
        if holder == message.id:
            self._wakeups.notify(JOBS)
            if sweep:
                self._locks_swept = time.monotonic()
        return holder

    def release_unique(self, queue: str, key: str, owner: str, keep_for: float = 0.0) -> None:
        if keep_for > 0:
            until = time.time() + keep_for
            self._db.write_one(
                "UPDATE unique_locks SET keep_until = ?1, expires = MAX(expires, ?1) "
                "WHERE queue = ?2 AND key = ?3 AND owner = ?4", (until, queue, key, owner))
        else:
            self._db.write_one("DELETE FROM unique_locks WHERE queue = ? AND key = ? AND "
                               "owner = ?", (queue, key, owner))
