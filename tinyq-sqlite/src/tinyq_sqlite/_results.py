"""Results in the broker's file: stored beside the jobs, so the broker can store a job's
result and ack it in one transaction, and skip a replayed enqueue of a job that ran.

Expired rows are deleted now and then by whoever stores (a read ignores them anyway).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from tinyq_core.plugin import Result, ResultBackend

from ._db import Database
from ._waiting import RESULTS, Wakeups

SWEEP_EVERY = 60.0  # seconds between deletions of expired results, per process


def store_results(conn: sqlite3.Connection, results: Sequence[Result], ttl: float) -> None:
    """Upsert ``results`` inside the caller's transaction. A failure (``ok`` false) does not
    replace a live success: the job ran twice and succeeded once."""
    now = time.time()
    conn.executemany(
        """INSERT INTO results (queue, job_id, body, ok, expires) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (queue, job_id) DO UPDATE
           SET body = excluded.body, ok = excluded.ok, expires = excluded.expires
           WHERE excluded.ok OR NOT results.ok OR results.expires <= ?""",
        [(r.queue, r.job_id, r.body, int(r.ok), now + ttl, now) for r in results],
    )


def succeeded(conn: sqlite3.Connection, queue: str, job_id: str) -> bool:
    """Whether a live success of ``job_id`` is stored."""
    row = conn.execute(
        "SELECT 1 FROM results WHERE queue = ? AND job_id = ? AND ok AND expires > ?",
        (queue, job_id, time.time()),
    ).fetchone()
    return row is not None


class SqliteResultBackend(ResultBackend):
    """The result backend of a :class:`~tinyq_sqlite.SqliteBroker` (``broker.result_backend()``)."""

    def __init__(self, db: Database, wakeups: Wakeups) -> None:
        self._db = db
        self._wakeups = wakeups
        self._swept = 0.0

    def store(self, results: Sequence[Result], ttl: float) -> None:
        if not results:
            return
        sweep = time.monotonic() - self._swept > SWEEP_EVERY

        def work(conn: sqlite3.Connection) -> None:
            store_results(conn, results, ttl)
            if sweep:
                conn.execute("DELETE FROM results WHERE expires <= ?", (time.time(),))
                conn.execute("DELETE FROM progress WHERE expires <= ?", (time.time(),))

        self._db.write(work)
        self._wakeups.notify(RESULTS)
        if sweep:
            self._swept = time.monotonic()

    def _lookup(self, queue: str, job_id: str) -> Result | None:
        def work(conn: sqlite3.Connection) -> Result | None:
            row = conn.execute(
                "SELECT body, ok FROM results WHERE queue = ? AND job_id = ? AND expires > ?",
                (queue, job_id, time.time()),
            ).fetchone()
            return None if row is None else Result(job_id, bytes(row[0]), queue, bool(row[1]))

        return self._db.read(work)

    def get(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        waiter = self._wakeups.waiter(RESULTS) if timeout != 0 else None
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            result = self._lookup(queue, job_id)
            if result is not None or waiter is None:
                return result
            if not waiter.wait_for_change(deadline):
                return None

    def store_progress(self, job_id: str, queue: str, body: bytes, ttl: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                """INSERT INTO progress (queue, job_id, body, expires) VALUES (?, ?, ?, ?)
                   ON CONFLICT (queue, job_id) DO UPDATE
                   SET body = excluded.body, expires = excluded.expires""",
                (queue, job_id, body, time.time() + ttl))

        self._db.write(work)

    def progress(self, job_id: str, queue: str) -> bytes | None:
        def work(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT body FROM progress WHERE queue = ? AND job_id = ? AND expires > ?",
                (queue, job_id, time.time())).fetchone()
            return None if row is None else bytes(row[0])

        return self._db.read(work)

    def stored(self, jobs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        def work(conn: sqlite3.Connection) -> set[tuple[str, str]]:
            now = time.time()
            return {
                (queue, job_id) for queue, job_id in jobs
                if conn.execute(
                    "SELECT 1 FROM results WHERE queue = ? AND job_id = ? AND expires > ?",
                    (queue, job_id, now)).fetchone() is not None
            }

        return self._db.read(work)

    def close(self) -> None:
        self._wakeups.close()
        self._db.close()
