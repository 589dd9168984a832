"""tinyq on SQLite: `delay()` one by one, `map()` in chunks of 1000, the `tinyq` command, on a
database file of its own (`sqlite:////<temp>/tinyq.db`, the broker's default options)."""

from __future__ import annotations

import time
from pathlib import Path

from . import _common as c
from . import _sqlite as s

s.ensure_tinyq_sqlite()

import tinyq_sqlite.plugin  # noqa: E402  # after ensure_tinyq_sqlite
from tinyq_core import Application  # noqa: E402

DB = 9  # the Redis database of the task's counter
FILE = s.path("tinyq.db")
# the plugin by hand: a checkout that is not installed has no entry point for it
app = Application(f"sqlite:///{FILE}", plugins=[tinyq_sqlite.plugin])


@app.task()
def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Bench(c.System):
    name = "tinyq-sqlite"
    db = DB
    bulk_api = "task.map, 1000 per call"
    worker_note = f"tinyq -w {s.THREADS}; 2 processes: -p 2 (each -w {s.THREADS})"

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            add.delay(i, i)

    def enqueue_bulk(self, n: int) -> None:
        for start in range(0, n, 1000):
            add.map([(i, i) for i in range(start, min(n, start + 1000))])

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        add.delay(i, i)
        return t0

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[c.script("tinyq"), "-a", f"{__name__}.app", "-w", str(s.THREADS),
                 "-l", "warn", "-p", str(processes)]]

    def reset(self) -> None:
        super().reset()
        s.delete_rows(FILE, ["jobs", "results", "dead_letters"])

    def close(self) -> None:
        app.close()
        super().close()
