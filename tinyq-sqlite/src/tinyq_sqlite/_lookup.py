"""The SQLite broker's message lookup (``message``, ``messages``: never a lease) and worker
registry (a ``workers`` table, each record with its expiry time). Mixins of the broker, over
its :class:`Database` (``self._db``)."""

from __future__ import annotations

import sqlite3
import time

from tinyq_core.plugin import Delivery, Message, WorkerRegistry

from ._db import Database
from ._schema import LEASED


class LookupMixin:
    _db: Database

    def message(self, job_id: str, queue: str = "default") -> Delivery | None:
        row = self._db.read(lambda conn: conn.execute(
            "SELECT body, state, due, attempts, seq, lease_no FROM jobs "
            "WHERE queue = ? AND id = ?", (queue, job_id)).fetchone())
        if row is None:
            return None
        body, state, due, attempts, seq, lease_no = row
        if state == LEASED:
            return Delivery(Message(job_id, queue, bytes(body)), attempts, f"{seq}:{lease_no}")
        return Delivery(Message(job_id, queue, bytes(body), due if due > time.time() else None),
                        0)

    def messages(self, queue: str, offset: int = 0, limit: int = 100) -> list[Message]:
        # Waiting jobs in delivery order, due ones first: ``due`` then ``seq`` (the index).
        rows = self._db.read(lambda conn: conn.execute(
            "SELECT id, body, due FROM jobs WHERE queue = ? AND state = 0 "
            "ORDER BY due, seq LIMIT ? OFFSET ?",
            (queue, max(0, limit), max(0, offset))).fetchall())
        now = time.time()
        return [Message(job_id, queue, bytes(body), due if due > now else None)
                for job_id, body, due in rows]


class RegistryMixin(WorkerRegistry):
    _db: Database

    def record_worker(self, worker_id: str, record: bytes, ttl: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            conn.execute("DELETE FROM workers WHERE expires <= ?", (now,))  # the dead ones
            conn.execute("INSERT OR REPLACE INTO workers (id, record, expires) "
                         "VALUES (?, ?, ?)", (worker_id, record, now + ttl))

        self._db.write(work)

    def remove_worker(self, worker_id: str) -> None:
        self._db.write(lambda conn: conn.execute(
            "DELETE FROM workers WHERE id = ?", (worker_id,)))

    def worker_records(self) -> list[bytes]:
        rows = self._db.read(lambda conn: conn.execute(
            "SELECT record FROM workers WHERE expires > ?", (time.time(),)).fetchall())
        return [bytes(record) for (record,) in rows]
