"""The SQLite broker's admin tier (BrokerAdmin): inspection, purges and dead letters."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from tinyq_core.plugin import BrokerAdmin, DeadLetter, JobStatus, Message, QueueCounts

from ._db import Database
from ._lookup import LookupMixin, RegistryMixin
from ._waiting import JOBS, Wakeups


class AdminMixin(LookupMixin, RegistryMixin, BrokerAdmin):
    """Admin operations over the broker's :class:`Database` (``self._db``), with the message
    lookup and the worker registry (_lookup.py)."""

    _db: Database
    _wakeups: Wakeups

    def status(self, job_id: str, queue: str = "default") -> JobStatus:
        row = self._db.read(lambda conn: conn.execute(
            "SELECT state, due FROM jobs WHERE queue = ? AND id = ?", (queue, job_id)
        ).fetchone())
        if row is None:
            return "unknown"
        if row[0] == 1:
            return "started"
        return "scheduled" if row[1] > time.time() else "queued"

    def _count(self, sql: str, *args: object) -> int:
        return int(self._db.read(lambda conn: conn.execute(sql, args).fetchone()[0]))

    def size(self, queue: str) -> int:
        return self._count("SELECT COUNT(*) FROM jobs WHERE queue = ? AND state = 0", queue)

    def count_leased(self, queue: str) -> int:
        return self._count("SELECT COUNT(*) FROM jobs WHERE queue = ? AND state = 1", queue)

    def counts(self, queue: str) -> QueueCounts:
        # Each COUNT is a range of an index: jobs_waiting (queue, state, due) splits the
        # waiting ones at now; dead_letters_queue (queue, seq) holds the dead letters.
        def read(conn: sqlite3.Connection) -> QueueCounts:
            now = time.time()
            ready, scheduled, leased = conn.execute(
                """SELECT (SELECT COUNT(*) FROM jobs WHERE queue = ?1 AND state = 0 AND due <= ?2),
                          (SELECT COUNT(*) FROM jobs WHERE queue = ?1 AND state = 0 AND due > ?2),
                          (SELECT COUNT(*) FROM jobs WHERE queue = ?1 AND state = 1)""",
                (queue, now)).fetchone()
            dead = conn.execute("SELECT COUNT(*) FROM dead_letters WHERE queue = ?",
                                (queue,)).fetchone()[0]
            return QueueCounts(ready, scheduled, leased, dead)

        return self._db.read(read)

    def queues(self) -> list[str]:
        """Every queue a job was sent to: enqueue records each in the ``queues`` table."""
        return self._db.read(lambda conn: [
            row[0] for row in conn.execute("SELECT name FROM queues ORDER BY name")])

    def purge(self, queue: str) -> int:
        """Waiting jobs, due or delayed; leased ones stay, their workers still ack them."""
        return self._db.write(lambda conn: conn.execute(
            "DELETE FROM jobs WHERE queue = ? AND state = 0", (queue,)).rowcount)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.read(lambda conn: conn.execute(
            """SELECT id, body, reason, error, attempts, failed_at FROM dead_letters
               WHERE queue = ? ORDER BY seq LIMIT ?""", (queue, limit)).fetchall())
        return [DeadLetter(Message(job_id, queue, bytes(body)), reason, error, attempts,
                           failed_at)
                for job_id, body, reason, error, attempts, failed_at in rows]

    def requeue_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Back on the queue, due now, attempts from 1, their failures forgotten. An
        unverified dead letter's id was only a claim: its result (the real job's) stays."""
        def work(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT seq, id, body, verified FROM dead_letters WHERE queue = ? ORDER BY seq",
                (queue,)).fetchall()
            chosen = [r for r in rows if ids is None or r[1] in ids]
            now = time.time()
            for seq, job_id, body, verified in chosen:
                conn.execute("DELETE FROM dead_letters WHERE seq = ?", (seq,))
                if verified:
                    conn.execute("DELETE FROM results WHERE queue = ? AND job_id = ?",
                                 (queue, job_id))
                conn.execute("INSERT OR IGNORE INTO jobs (queue, id, body, state, due) "
                             "VALUES (?, ?, ?, 0, ?)", (queue, job_id, body, now))
            return len(chosen)

        requeued = self._db.write(work)
        if requeued:
            self._wakeups.notify(JOBS)
        return requeued

    def purge_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if ids is None:
            return self._db.write(lambda conn: conn.execute(
                "DELETE FROM dead_letters WHERE queue = ?", (queue,)).rowcount)
        chosen = sorted(set(ids))
        return self._db.write(lambda conn: sum(conn.execute(
            "DELETE FROM dead_letters WHERE queue = ? AND id = ?", (queue, job_id)).rowcount
            for job_id in chosen))
