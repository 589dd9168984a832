"""Chord records on the SQLite broker (:class:`ChordRecords`): tables ``chords`` and
``chord_members``; a member's row, the count and the callback's insert are one write
transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from tinyq_core.plugin import ChordRecords, EnqueueError, Message, Result

from ._db import Database, StoreFull
from ._results import SWEEP_EVERY, store_results
from ._waiting import JOBS, RESULTS, Wakeups

_FORGET_MEMBERS = """DELETE FROM chord_members WHERE (queue, chord_id) IN
    (SELECT queue, chord_id FROM chords WHERE expires <= ?)"""
_FORGET = "DELETE FROM chords WHERE expires <= ?"


class SqliteChordRecords(ChordRecords):
    _db: Database
    _wakeups: Wakeups
    _chords_swept = 0.0  # time.monotonic() of the last sweep by this broker

    def chord_member_done(
        self,
        queue: str,
        chord_id: str,
        member: int,
        total: int,
        ttl: float,
        messages: Sequence[Message] | Callable[[], Sequence[Message]] = (),
        *,
        results: Sequence[Result] = (),
    ) -> bool:
        from ._broker import _ADD_JOB, _ADD_QUEUE  # _broker imports this mixin

        callback: list[Message] = []

        def work(conn: sqlite3.Connection) -> bool:
            now = time.time()
            if results:  # first: the callback reads them
                store_results(conn, results, ttl)
            key = (queue, chord_id)
            row = conn.execute("SELECT expires FROM chords WHERE queue = ? AND chord_id = ?",
                               key).fetchone()
            if row is not None and row[0] <= now:  # expired: it starts again
                conn.execute("DELETE FROM chord_members WHERE queue = ? AND chord_id = ?", key)
                conn.execute("DELETE FROM chords WHERE queue = ? AND chord_id = ?", key)
            conn.execute("INSERT INTO chords (queue, chord_id, done, expires) VALUES "
                         "(?, ?, 0, ?) ON CONFLICT DO UPDATE SET expires = excluded.expires",
                         (queue, chord_id, now + ttl))
            added = conn.execute("INSERT OR IGNORE INTO chord_members (queue, chord_id, "
                                 "member) VALUES (?, ?, ?)", (queue, chord_id, member)).rowcount
            if not added:
                return False
            conn.execute("UPDATE chords SET done = done + 1 WHERE queue = ? AND chord_id = ?",
                         key)
            (done,) = conn.execute("SELECT done FROM chords WHERE queue = ? AND chord_id = ?",
                                   key).fetchone()
            if sweep:
                conn.execute(_FORGET_MEMBERS, (now,))
                conn.execute(_FORGET, (now,))
            if done != total:
                return False
            callback[:] = messages() if callable(messages) else messages
            for m in callback:
                conn.execute(_ADD_JOB, (m.queue, m.id, m.body, now, m.queue, m.id, now))
            return True

        sweep = time.monotonic() - self._chords_swept > SWEEP_EVERY
        known = self._db.known_queues()
        try:
            for name in {queue} - known if messages else ():  # the callback's queue
                self._db.write_one(_ADD_QUEUE, (name,))
                known.add(name)
            fired = self._db.write(work)
        except StoreFull as exc:
            raise EnqueueError(str(exc)) from None
        if sweep:
            self._chords_swept = time.monotonic()
        if results:
            self._wakeups.notify(RESULTS)
        if fired and callback:
            self._wakeups.notify(JOBS)
        return fired
