"""Rate and concurrency limits on the SQLite broker (:class:`JobLimits`): tables
``rate_limits`` (each key's next slot), ``rate_bookings`` (tokens already booked, so a call
asked again books nothing more) and ``limit_slots`` (leased slots), each call one write
transaction on this machine's clock (every process using the file shares it)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from tinyq_core.plugin import JobLimits

from ._db import Database

BOOKINGS_KEPT = 60.0  # seconds a booking is remembered after its slot (a call asked again)
WAITER_GRACE = 10.0  # seconds a waiter found without a delayed job keeps its place
IDLE_KEPT = 60.0  # seconds an idle limit's rows stay after they stopped mattering

_BOOKED = "SELECT slot FROM rate_bookings WHERE queue = ? AND key = ? AND token = ?"
_TAT = "SELECT tat FROM rate_limits WHERE queue = ? AND key = ?"
_SET_TAT = "INSERT OR REPLACE INTO rate_limits (queue, key, tat) VALUES (?, ?, ?)"
_BOOK = "INSERT INTO rate_bookings (queue, key, token, slot) VALUES (?, ?, ?, ?)"
_SWEEP_BOOKINGS = "DELETE FROM rate_bookings WHERE slot < ?"
_SWEEP_RATES = "DELETE FROM rate_limits WHERE tat < ?"
_EXPIRE_SLOTS = "DELETE FROM limit_slots WHERE queue = ? AND key = ? AND expires <= ?"
_SWEEP_SLOTS = "DELETE FROM limit_slots WHERE expires <= ?"  # a small table: running jobs
_COUNT_SLOTS = """SELECT COUNT(*), SUM(holder = ?) FROM limit_slots
    WHERE queue = ? AND key = ?"""
_WAIT = "INSERT OR IGNORE INTO limit_waiters (queue, key, holder, since) VALUES (?, ?, ?, ?)"
_STOP_WAITING = "DELETE FROM limit_waiters WHERE queue = ? AND key = ? AND holder = ?"
_FIRST_WAITERS = """SELECT holder, since FROM limit_waiters WHERE queue = ? AND key = ?
    ORDER BY since, rowid LIMIT 10"""
_WAKE = "UPDATE jobs SET due = ? WHERE queue = ? AND id = ? AND state = 0 AND due > ?"
_RELEASE_SLOT = "DELETE FROM limit_slots WHERE queue = ? AND key = ? AND holder = ?"
_TAKE_SLOT = """INSERT OR REPLACE INTO limit_slots (queue, key, holder, expires)
    VALUES (?, ?, ?, ?)"""


class SqliteJobLimits(JobLimits):
    wakes_slot_waiters = True
    _db: Database

    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        return self.book_rates([(queue, key, interval, burst, token)])[0]

    def book_rates(self, bookings: Sequence[tuple[str, str, float, int, str]]) -> list[float]:
        def work(conn: sqlite3.Connection) -> list[float]:  # one transaction for all
            now = time.time()
            waits = [_book(conn, now, *booking) for booking in bookings]
            conn.execute(_SWEEP_BOOKINGS, (now - BOOKINGS_KEPT,))
            conn.execute(_SWEEP_RATES, (now - IDLE_KEPT,))
            return waits

        return self._db.write(work)

    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        return self.acquire_slots([(queue, key, limit, holder, lease_seconds)])[0]

    def acquire_slots(self, requests: Sequence[tuple[str, str, int, str, float]], *,
                      wait: bool = False) -> list[bool]:
        def work(conn: sqlite3.Connection) -> list[bool]:
            now = time.time()
            conn.execute(_SWEEP_SLOTS, (now - IDLE_KEPT,))  # dead holders of idle keys
            return [_acquire(conn, now, *request, wait) for request in requests]

        return self._db.write(work)

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        self.release_slots([(queue, key, holder)])

    def release_slots(self, slots: Sequence[tuple[str, str, str]]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            for queue, key, holder in slots:
                if conn.execute(_RELEASE_SLOT, (queue, key, holder)).rowcount:
                    _wake_first(conn, now, queue, key)

        self._db.write(work)


def _book(conn: sqlite3.Connection, now: float, queue: str, key: str, interval: float,
          burst: int, token: str) -> float:
    row = conn.execute(_BOOKED, (queue, key, token)).fetchone()
    if row is not None:  # asked again: the slot it got
        return max(0.0, float(row[0]) - now)
    row = conn.execute(_TAT, (queue, key)).fetchone()
    tat = 0.0 if row is None else float(row[0])
    slot = max(now, tat - (burst - 1) * interval)
    conn.execute(_SET_TAT, (queue, key, max(tat, now) + interval))
    conn.execute(_BOOK, (queue, key, token, slot))
    return slot - now


def _acquire(conn: sqlite3.Connection, now: float, queue: str, key: str, limit: int,
             holder: str, lease_seconds: float, wait: bool) -> bool:
    conn.execute(_EXPIRE_SLOTS, (queue, key, now))
    held, mine = conn.execute(_COUNT_SLOTS, (holder, queue, key)).fetchone()
    if not mine and held >= limit:
        if wait:  # a waiter already keeps its place
            conn.execute(_WAIT, (queue, key, holder, now))
        return False
    conn.execute(_TAKE_SLOT, (queue, key, holder, now + lease_seconds))
    if wait:
        conn.execute(_STOP_WAITING, (queue, key, holder))
    return True


def _wake_first(conn: sqlite3.Connection, now: float, queue: str, key: str) -> None:
    """Make the first waiter of ``key`` whose job is delayed due now; on the way (a few per
    call), keep those whose give-back may be on its way (WAITER_GRACE), drop older ones."""
    for holder, since in conn.execute(_FIRST_WAITERS, (queue, key)).fetchall():
        if conn.execute(_WAKE, (now, queue, holder, now)).rowcount:
            conn.execute(_STOP_WAITING, (queue, key, holder))
            return
        if since < now - WAITER_GRACE:
            conn.execute(_STOP_WAITING, (queue, key, holder))
