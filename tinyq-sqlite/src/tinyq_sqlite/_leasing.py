"""The leasing SQL: reserve, settle (ack, nack, dead letter), renew and recover, each run
inside a write transaction the caller holds (see ``_db``); the broker (``_broker``) chooses
the transactions, the waiting and the wake-ups.

Every change to a leased job is keyed by its delivery's receipt ``"<seq>:<lease_no>"``: an
ack, renewal, nack or dead letter about a lease that expired and was handed out again matches
no row and changes nothing. Time is each process's ``time.time()``, the scale of
``Message.due``: the processes sharing a file share a machine and its clock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from tinyq_core.plugin import Delivery, Message, Result

from ._results import store_results, succeeded
from ._schema import LEASED, WAITING

_LEASE_KEY = "seq = ? AND state = 1 AND lease_no = ?"  # the row a receipt still owns


def _key(delivery: Delivery) -> tuple[int, int]:
    seq, _, lease_no = str(delivery.receipt).partition(":")
    return int(seq), int(lease_no)


def lease(conn: sqlite3.Connection, queues: Sequence[str], count: int,
          visibility_timeout: float) -> list[Delivery]:
    """Lease up to ``count`` due jobs, earlier queues first."""
    now = time.time()
    expires = now + visibility_timeout
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


def next_due(conn: sqlite3.Connection, queues: Sequence[str]) -> float | None:
    """The Unix time the next delayed job of ``queues`` falls due, if any."""
    now, dues = time.time(), []
    for queue in queues:
        row = conn.execute(
            "SELECT MIN(due) FROM jobs WHERE queue = ? AND state = 0 AND due > ?",
            (queue, now)).fetchone()
        if row[0] is not None:
            dues.append(float(row[0]))
    return min(dues) if dues else None


def ack(conn: sqlite3.Connection, deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Remove the jobs of ``deliveries``; return those whose lease was no longer theirs."""
    return [d for d in deliveries
            if conn.execute(f"DELETE FROM jobs WHERE {_LEASE_KEY}", _key(d)).rowcount == 0]


def renew(conn: sqlite3.Connection, deliveries: Sequence[Delivery],
          visibility_timeout: float) -> list[Delivery]:
    """Extend the leases; return the deliveries whose lease was no longer theirs."""
    expires = time.time() + visibility_timeout
    return [d for d in deliveries if conn.execute(
        f"UPDATE jobs SET lease_expires = ? WHERE {_LEASE_KEY}",
        (expires, *_key(d))).rowcount == 0]


def nack(conn: sqlite3.Connection, delivery: Delivery, delay: float,
         body: bytes | None) -> None:
    """Waiting again after ``delay`` seconds, attempts from 0; ``body`` replaces the
    current one unless None (b"" is a new, empty body)."""
    conn.execute(
        f"""UPDATE jobs SET state = 0, due = ?, attempts = 0, lease_expires = NULL,
            body = CASE WHEN ? THEN ? ELSE body END WHERE {_LEASE_KEY}""",
        (time.time() + max(delay, 0.0), body is not None, body if body is not None else b"",
         *_key(delivery)))


def dead_letter(conn: sqlite3.Connection, delivery: Delivery, reason: str, error: str,
                result: Result | None, result_ttl: float, verified: bool) -> None:
    """Remove the lease's row, store the failure, add the dead letter. The row removed is
    this delivery's own (by receipt), so an unverified message's id touches nothing else;
    its failure is not stored under an id it only claims."""
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


def recover(conn: sqlite3.Connection, queues: Sequence[str]) -> int:
    """Expired leases become waiting again at the back of their queue (due now); their
    delivery count goes on. One UPDATE: a renewal commits before or after it, not amid."""
    now = time.time()
    marks = ", ".join("?" * len(queues))
    return conn.execute(
        f"""UPDATE jobs SET state = {WAITING}, due = ?, lease_expires = NULL
            WHERE state = {LEASED} AND lease_expires <= ? AND queue IN ({marks})""",
        (now, now, *queues)).rowcount
