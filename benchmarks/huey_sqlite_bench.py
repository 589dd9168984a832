"""Huey on SQLite (`SqliteHuey(filename=...)`, a database file of its own): calling the task
enqueues it, `huey_consumer` with threads, one or two of them.

Huey's SQLite storage cannot block, so its consumer polls: each worker sleeps `-d` seconds
after finding the queue empty, multiplied by `-b` up to `-m` (defaults 0.1 s, 1.15, 10 s: an
idle consumer looks every 10 s). Here every worker looks every 5 ms, tinyq-sqlite's
`poll_interval`, so that the latency compares the same polling; Huey's defaults would measure
its back-off instead.

Huey's storage leaves SQLite's `synchronous` at its default, FULL: an fsync of the WAL at
every commit (enqueue, dequeue, result). tinyq-sqlite's default is NORMAL (no fsync per
commit; a process crash loses nothing, a power loss may take the last commits). So that the
comparison is of the queues and not of fsync, Huey's connections are set to NORMAL too;
`TINYQ_BENCH_HUEY_SYNC=full` keeps Huey's default."""

from __future__ import annotations

import os
import sqlite3

from huey import SqliteHuey
from huey.storage import SqliteStorage

from . import _common as c
from . import _sqlite as s
from ._families import HueySystem

DB = 10  # the Redis database of the task's counter
FILE = s.path("huey.db")
SYNC = os.environ.get("TINYQ_BENCH_HUEY_SYNC", "normal").upper()
if SYNC not in ("NORMAL", "FULL"):
    raise ValueError(f"TINYQ_BENCH_HUEY_SYNC must be normal or full, not {SYNC.lower()!r}")


class Storage(SqliteStorage):  # type: ignore[misc]  # huey has no type hints
    """Huey's SQLite storage with `PRAGMA synchronous` set on each connection."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute(f"PRAGMA synchronous={SYNC}")
        return conn


huey = SqliteHuey("bench", filename=str(FILE), storage_class=Storage)


@huey.task()
def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Bench(HueySystem):
    name = "huey-sqlite"
    db = DB
    task = add
    worker_note = (f"huey_consumer -k thread -w {s.THREADS} -d {s.POLL} -b 1 -m {s.POLL}; "
                   f"2 processes: two of them; synchronous={SYNC}")

    def worker_commands(self, processes: int) -> list[list[str]]:
        # N processes of THREADS threads each, as `tinyq -p N -w THREADS`: Huey's process
        # workers run one job at a time each, so N consumers of threads match tinyq best
        command = self.consumer_command("-k", "thread", "-w", str(s.THREADS), "-d", str(s.POLL),
                                        "-b", "1", "-m", str(s.POLL))
        return [command] * processes

    def reset(self) -> None:
        super().reset()
        huey.flush()

    def close(self) -> None:
        huey.storage.close()
        super().close()
