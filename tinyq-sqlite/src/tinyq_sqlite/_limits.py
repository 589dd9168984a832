"""Rate and concurrency limits on the SQLite broker (:class:`JobLimits`): tables
``rate_limits`` (each key's next slot), ``rate_bookings`` (tokens already booked, so a call
asked again books nothing more) and ``limit_slots`` (leased slots), each call one write
transaction on this machine's clock (every process using the file shares it)."""

from __future__ import annotations

import sqlite3
import time

from tinyq_core.plugin import JobLimits

from ._db import Database

BOOKINGS_KEPT = 60.0  # seconds a booking is remembered after its slot (a call asked again)
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
_TAKE_SLOT = """INSERT OR REPLACE INTO limit_slots (queue, key, holder, expires)
    VALUES (?, ?, ?, ?)"""


class SqliteJobLimits(JobLimits):
    _db: Database

    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        def work(conn: sqlite3.Connection) -> float:
            now = time.time()
            row = conn.execute(_BOOKED, (queue, key, token)).fetchone()
            if row is not None:
                return max(0.0, float(row[0]) - now)
            row = conn.execute(_TAT, (queue, key)).fetchone()
            tat = 0.0 if row is None else float(row[0])
            slot = max(now, tat - (burst - 1) * interval)
            conn.execute(_SET_TAT, (queue, key, max(tat, now) + interval))
            conn.execute(_BOOK, (queue, key, token, slot))
            conn.execute(_SWEEP_BOOKINGS, (now - BOOKINGS_KEPT,))
            conn.execute(_SWEEP_RATES, (now - IDLE_KEPT,))
            return slot - now

        return self._db.write(work)

    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            now = time.time()
            conn.execute(_EXPIRE_SLOTS, (queue, key, now))
            conn.execute(_SWEEP_SLOTS, (now - IDLE_KEPT,))  # dead holders of idle keys
            held, mine = conn.execute(_COUNT_SLOTS, (holder, queue, key)).fetchone()
            if not mine and held >= limit:
                return False
            conn.execute(_TAKE_SLOT, (queue, key, holder, now + lease_seconds))
            return True

        return self._db.write(work)

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        self._db.write_one("DELETE FROM limit_slots WHERE queue = ? AND key = ? AND "
                           "holder = ?", (queue, key, holder))
