"""Huey on SQLite (`SqliteHuey(filename=...)`, a database file of its own): calling the task
enqueues it, `huey_consumer` with threads, one or two of them.

Huey's SQLite storage cannot block, so its consumer polls: each worker sleeps `-d` seconds
after finding the queue empty, multiplied by `-b` up to `-m` (defaults 0.1 s, 1.15, 10 s: an
idle consumer looks every 10 s). Here every worker looks every 5 ms, tinyq-sqlite's
`poll_interval`, so that the latency compares the same polling; Huey's defaults would measure
its back-off instead."""

from __future__ import annotations

import time

from huey import SqliteHuey

from . import _common as c
from . import _sqlite as s

DB = 10  # the Redis database of the task's counter
FILE = s.path("huey.db")
huey = SqliteHuey("bench", filename=str(FILE))


@huey.task()
def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Bench(c.System):
    name = "huey-sqlite"
    db = DB
    worker_note = (f"huey_consumer -k thread -w {s.THREADS} -d {s.POLL} -b 1 -m {s.POLL}; "
                   "2 processes: two of them")

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            add(i, i)

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        add(i, i)
        return t0

    def worker_commands(self, processes: int) -> list[list[str]]:
        # N processes of THREADS threads each, as `tinyq -p N -w THREADS`: Huey's process
        # workers run one job at a time each, so N consumers of threads match tinyq best
        command = [c.script("huey_consumer"), f"{__name__}.huey", "-k", "thread", "-w",
                   str(s.THREADS), "-d", str(s.POLL), "-b", "1", "-m", str(s.POLL), "-n", "-q"]
        return [command] * processes

    def reset(self) -> None:
        super().reset()
        huey.flush()

    def close(self) -> None:
        huey.storage.close()
        super().close()
