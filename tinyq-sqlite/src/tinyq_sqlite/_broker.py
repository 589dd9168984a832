"""The SQLite broker's required tier: enqueue, leases, settle, recovery (``sqlite://``).

Every operation is one short write transaction (see ``_db``), keyed by the delivery's receipt
``"<seq>:<lease_no>"``: an ack, renewal, nack or dead letter about a lease that expired and was
handed out again matches no row and changes nothing. Time is each process's ``time.time()``,
the scale of ``Message.due``: the processes sharing a file share a machine and its clock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from tinyq_core.plugin import Broker, Delivery, EnqueueError, Message, Result, SettleRequest

from ._admin import AdminMixin
from ._db import Database, StoreFull
from ._options import Options, parse
from ._results import SqliteResultBackend, store_results, succeeded
from ._schema import LEASED, WAITING
from ._waiting import JOBS, RESULTS, Wakeups

_LEASE_KEY = "seq = ? AND state = 1 AND lease_no = ?"  # the row a receipt still owns
_ADD_QUEUE = "INSERT OR IGNORE INTO queues (name) VALUES (?)"
# Skipped: an id still waiting or leased (the UNIQUE key), or whose result is still stored
# (the job ran; this is a replay). One statement: atomic on its own.
_ADD_JOB = """INSERT OR IGNORE INTO jobs (queue, id, body, state, due)
    SELECT ?, ?, ?, 0, ? WHERE NOT EXISTS (SELECT 1 FROM results
    WHERE queue = ? AND job_id = ? AND expires > ?)"""


def _key(delivery: Delivery) -> tuple[int, int]:
    seq, _, lease_no = str(delivery.receipt).partition(":")
    return int(seq), int(lease_no)


class SqliteBroker(AdminMixin, Broker):
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

    def _lease(self, conn: sqlite3.Connection, queues: Sequence[str], count: int
               ) -> list[Delivery]:
        """Lease up to ``count`` due jobs, earlier queues first, inside a transaction."""
        now = time.time()
        expires = now + self.visibility_timeout
        out: list[Delivery] = []
        for queue in queues:
            if len(out) >= count:
                break
            rows = conn.execute(
                """SELECT seq, id, body, lease_no, attempts FROM jobs
                   WHERE queue = ? AND state = 0 AND due <= ? ORDER BY due, seq LIMIT ?""",
                (queue, now, count - len(out)),
            ).fetchall()
            conn.executemany(
                "UPDATE jobs SET state = 1, lease_expires = ?, lease_no = lease_no + 1, "
                "attempts = attempts + 1 WHERE seq = ?",
                [(expires, row[0]) for row in rows],
            )
            out += [Delivery(Message(job_id, queue, bytes(body)), attempts + 1,
                             f"{seq}:{lease_no + 1}")
                    for seq, job_id, body, lease_no, attempts in rows]
        return out

    def _next_due(self, queues: Sequence[str]) -> float | None:
        """The Unix time the next delayed job of ``queues`` falls due, if any."""
        def work(conn: sqlite3.Connection) -> float | None:
            now, dues = time.time(), []
            for queue in queues:
                row = conn.execute(
                    "SELECT MIN(due) FROM jobs WHERE queue = ? AND state = 0 AND due > ?",
                    (queue, now)).fetchone()
                if row[0] is not None:
                    dues.append(float(row[0]))
            return min(dues) if dues else None

        return self._db.read(work)

    def _lease_waiting(self, queues: Sequence[str], count: int, timeout: float,
                       first_look: Callable[[], list[Delivery]]) -> list[Delivery]:
        """``first_look()``, then while it found nothing, lease again after each commit of
        another connection (or a delayed job falling due) until ``timeout``."""
        deadline = time.monotonic() + timeout
        # Made before the first look, so a commit in between is not missed.
        waiter = self._wakeups.waiter(JOBS) if timeout > 0 and count > 0 else None
        out = first_look()
        while not out and waiter is not None and waiter.wait_for_change(
                deadline, self._next_due(queues)):
            out = self._db.write(lambda conn: self._lease(conn, queues, count))
        return out

    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        if count <= 0 or not queues:
            return []
        return self._lease_waiting(queues, count, timeout, lambda: self._db.write(
            lambda conn: self._lease(conn, queues, count)))

    def settle_and_reserve(self, request: SettleRequest) -> list[Delivery]:
        """Results, acks and the first look for more in one transaction (Redis' one round
        trip); only when nothing is due does it go on waiting."""
        queues = request.queues
        count = request.count if queues else 0

        def work(conn: sqlite3.Connection) -> tuple[list[Delivery], list[Delivery]]:
            if request.results:
                store_results(conn, request.results, request.result_ttl)
            lost = self._ack(conn, request.acks)
            return lost, self._lease(conn, queues, count) if count > 0 else []

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

        def work(conn: sqlite3.Connection) -> list[Delivery]:
            expires = time.time() + self.visibility_timeout
            return [d for d in deliveries if conn.execute(
                f"UPDATE jobs SET lease_expires = ? WHERE {_LEASE_KEY}",
                (expires, *_key(d))).rowcount == 0]

        return self._db.write(work)

    @staticmethod
    def _ack(conn: sqlite3.Connection, deliveries: Sequence[Delivery]) -> list[Delivery]:
        return [d for d in deliveries
                if conn.execute(f"DELETE FROM jobs WHERE {_LEASE_KEY}", _key(d)).rowcount == 0]

    def ack(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        return self._db.write(lambda conn: self._ack(conn, deliveries))

    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            # ``body IS NULL`` keeps the current body; b"" is a new, empty one.
            conn.execute(
                f"""UPDATE jobs SET state = 0, due = ?, attempts = 0, lease_expires = NULL,
                    body = CASE WHEN ? THEN ? ELSE body END WHERE {_LEASE_KEY}""",
                (now + max(delay, 0.0), body is not None, body if body is not None else b"",
                 *_key(delivery)))

        self._db.write(work)
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
        """One transaction: remove the lease's row, store the failure, add the dead letter.
        The row removed is this delivery's own (by receipt), so an unverified message's id
        touches nothing else; its failure is not stored under an id it only claims."""
        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute(f"SELECT attempts FROM jobs WHERE {_LEASE_KEY}",
                               _key(delivery)).fetchone()
            if row is None:
                return  # not ours any more: recovered and maybe leased again
            conn.execute(f"DELETE FROM jobs WHERE {_LEASE_KEY}", _key(delivery))
            if result is not None and verified:
                if succeeded(conn, delivery.queue, delivery.id):
                    return  # it ran twice and succeeded once: settled, no dead letter
                store_results(conn, [result], result_ttl)
            conn.execute(
                """INSERT INTO dead_letters (queue, id, body, reason, error, attempts,
                   failed_at, verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (delivery.queue, delivery.id, delivery.message.body, reason, error, row[0],
                 time.time(), int(verified)))

        self._db.write(work)
        if result is not None and verified:
            self._wakeups.notify(RESULTS)

    # -- time-driven moves ---------------------------------------------------------------

    def recover(self, queues: Sequence[str]) -> int:
        """Expired leases become waiting again at the back of their queue (due now); their
        delivery count goes on. One UPDATE: a renewal commits before or after it, not amid."""
        if not queues:
            return 0

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            marks = ", ".join("?" * len(queues))
            return conn.execute(
                f"""UPDATE jobs SET state = {WAITING}, due = ?, lease_expires = NULL
                    WHERE state = {LEASED} AND lease_expires <= ? AND queue IN ({marks})""",
                (now, now, *queues)).rowcount

        recovered = self._db.write(work)
        if recovered:
            self._wakeups.notify(JOBS)
        return recovered

    def move_due(self, queues: Sequence[str]) -> float | None:
        """Nothing to move: ``reserve`` delivers a delayed job once its due time passed. Only
        says how long until the next one, a read."""
        due = self._next_due(queues)
        return None if due is None else max(0.0, due - time.time())
