"""tinyq on SQLite: `delay()` one by one, `map()` in chunks of 1000, the `tinyq` command, on a
database file of its own (`sqlite:////<temp>/tinyq.db`, the broker's default options)."""

from __future__ import annotations

from . import _common as c
from . import _sqlite as s
from ._families import TinyqSystem

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


class Bench(TinyqSystem):
    name = "tinyq-sqlite"
    db = DB
    app, task = app, add
    worker_note = f"tinyq -w {s.THREADS}; 2 processes: -p 2 (each -w {s.THREADS})"

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[*self.tinyq_command(s.THREADS), "-p", str(processes)]]

    def reset(self) -> None:
        super().reset()
        s.delete_rows(FILE, ["jobs", "results", "dead_letters"])
