"""The SQLite broker's required tier (``sqlite://``): enqueue, and the transactions, waiting
and wake-ups around the leasing SQL of ``_leasing``. Every operation is one short write
transaction (see ``_db``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from tinyq_core.plugin import Broker, Delivery, EnqueueError, Message, Result, SettleRequest

from . import _leasing as leasing
from ._admin import AdminMixin
from ._cancel import CancelMixin
from ._db import Database, StoreFull
from ._limits import SqliteJobLimits
from ._options import Options, parse
from ._results import SqliteResultBackend, store_results
from ._schedules import SqliteSchedules
from ._unique import SqliteUniqueLocks
from ._waiting import JOBS, RESULTS, Wakeups
from ._workflows import SqliteChordRecords

_ADD_QUEUE = "INSERT OR IGNORE INTO queues (name) VALUES (?)"
# Skipped: an id still waiting or leased (the UNIQUE key), or whose result is still stored
# (the job ran; this is a replay). One statement: atomic on its own.
_ADD_JOB = """INSERT OR IGNORE INTO jobs (queue, id, body, state, due)
    SELECT ?, ?, ?, 0, ? WHERE NOT EXISTS (SELECT 1 FROM results
    WHERE queue = ? AND job_id = ? AND expires > ?)"""


class SqliteBroker(AdminMixin, SqliteUniqueLocks, SqliteSchedules, CancelMixin, SqliteJobLimits,
                   SqliteChordRecords,
                   Broker):
    """Broker and result backend on one SQLite file; see docs/sqlite.md. Connects lazily."""

    def __init__(self, uri: str) -> None:
        self.options: Options = parse(uri)
        self.uri = uri
        self.visibility_timeout = self.options.visibility_timeout
        self._db = Database(self.options)
        self._wakeups = Wakeups(self._db)
        self._results = SqliteResultBackend(self._db, self._wakeups)

    @property
    def poll_interval(self) -> float | None:  # type: ignore[override]  # read, never set
        """None once the wake-ups are events (inotify, sockets: woken at once); the
        fallback's interval while they poll, or before the first wait has chosen."""
        return None if self._wakeups.kind in ("inotify", "socket") else self.options.poll_interval

    def __repr__(self) -> str:
        return f"SqliteBroker({self.uri!r})"

    def result_backend(self) -> SqliteResultBackend:
        return self._results

    def ping(self) -> None:
        self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._wakeups.close()
        self._db.close()

    # -- enqueue -------------------------------------------------------------------------

    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        """All or none, in one transaction. ``durable``: that commit is fsynced."""
        if not messages:
            return
        known = self._db.known_queues()
        now = time.time()
        rows = [(m.queue, m.id, m.body, now if m.due is None else max(m.due, now),
                 m.queue, m.id, now) for m in messages]
        try:
            # A queue's row before its jobs, on its own: a row without jobs lists nothing.
            for queue in sorted({m.queue for m in messages} - known):
                self._db.write_one(_ADD_QUEUE, (queue,))
                known.add(queue)
            if len(rows) == 1:
                # delay()'s path: one statement, so no BEGIN and COMMIT round trips.
                self._db.write_one(_ADD_JOB, rows[0], durable=durable)
            else:
                self._db.write(lambda conn: conn.executemany(_ADD_JOB, rows), durable=durable)
        except StoreFull as exc:
            # All or none: none went in, except the ids that were there already (skipped,
            # so they count as in); the producer's retry sends the others once there is room.
            raise EnqueueError(str(exc), enqueued_ids=self._present(messages)) from None
        # Delayed jobs too: a waiter caps its wait at the earliest due time it saw, and
        # this one may be sooner.
        self._wakeups.notify(JOBS)

    def _present(self, messages: Sequence[Message]) -> list[str]:
        def work(conn: sqlite3.Connection) -> list[str]:
            return [m.id for m in messages if conn.execute(
                "SELECT 1 FROM jobs WHERE queue = ? AND id = ?", (m.queue, m.id)).fetchone()]

        return self._db.read(work)

    # -- reserve -------------------------------------------------------------------------

    def _lease(self, queues: Sequence[str], count: int) -> list[Delivery]:
        return self._db.write(
            lambda conn: leasing.lease(conn, queues, count, self.visibility_timeout))

    def _lease_waiting(self, queues: Sequence[str], count: int, timeout: float,
                       first_look: Callable[[], list[Delivery]]) -> list[Delivery]:
        """``first_look()``, then while it found nothing, lease again after each commit of
        another connection (or a delayed job falling due) until ``timeout``."""
        deadline = time.monotonic() + timeout
        # Made before the first look, so a commit in between is not missed.
        waiter = self._wakeups.waiter(JOBS) if timeout > 0 and count > 0 else None
        out = first_look()
        while not out and waiter is not None and waiter.wait_for_change(
                deadline, self._db.read(lambda conn: leasing.next_due(conn, queues))):
            out = self._lease(queues, count)
        return out

    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        if count <= 0 or not queues:
            return []
        return self._lease_waiting(queues, count, timeout,
                                   lambda: self._lease(queues, count))

    def settle_and_reserve(self, request: SettleRequest) -> list[Delivery]:
        """Results, acks and the first look for more in one transaction (Redis' one round
        trip); only when nothing is due does it go on waiting."""
        queues = request.queues
        count = request.count if queues else 0

        def work(conn: sqlite3.Connection) -> tuple[list[Delivery], list[Delivery]]:
            if request.results:
                store_results(conn, request.results, request.result_ttl)
            lost = leasing.ack(conn, request.acks)
            return lost, (leasing.lease(conn, queues, count, self.visibility_timeout)
                          if count > 0 else [])

        def first_look() -> list[Delivery]:
            lost, out = self._db.write(work)
            if request.results:
                self._wakeups.notify(RESULTS)
            if lost and request.on_lost is not None:
                request.on_lost(lost)
            return out

        return self._lease_waiting(queues, count, request.timeout, first_look)

    # -- settling a lease ----------------------------------------------------------------

    def renew(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        return self._db.write(
            lambda conn: leasing.renew(conn, deliveries, self.visibility_timeout))

    def ack(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        return self._db.write(lambda conn: leasing.ack(conn, deliveries))

    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        self._db.write(lambda conn: leasing.nack(conn, delivery, delay, body))
        self._wakeups.notify(JOBS)  # with a delay too: it may be due before a waiter's cap

    def dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        error: str = "",
        *,
        result: Result | None = None,
        result_ttl: float = 0.0,
        verified: bool = True,
    ) -> None:
        """One transaction: remove the lease's row, store the failure, add the dead letter
        (see ``_leasing.dead_letter``)."""
        self._db.write(lambda conn: leasing.dead_letter(
            conn, delivery, reason, error, result, result_ttl, verified))
        if result is not None and verified:
            self._wakeups.notify(RESULTS)

    # -- time-driven moves ---------------------------------------------------------------

    def recover(self, queues: Sequence[str]) -> int:
        """Expired leases become waiting again (``_leasing.recover``)."""
        if not queues:
            return 0
        recovered = self._db.write(lambda conn: leasing.recover(conn, queues))
        if recovered:
            self._wakeups.notify(JOBS)
        return recovered

    def move_due(self, queues: Sequence[str]) -> float | None:
        """Nothing to move: ``reserve`` delivers a delayed job once its due time passed. Only
        says how long until the next one, a read."""
        due = self._db.read(lambda conn: leasing.next_due(conn, queues))
        return None if due is None else max(0.0, due - time.time())
