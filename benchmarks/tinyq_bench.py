"""tinyq: `delay()` one by one, `map()` in chunks of 1000, the `tinyq` command."""

from __future__ import annotations

import subprocess
import time
from functools import cache

from tinyq_core import Application

from . import _common as c

DB = 1
THREADS = 8
app = Application(c.url(DB))


@app.task()
def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


@cache
def has_processes_flag() -> bool:
    """`tinyq -p N` is being added; until it is there, N processes are N `tinyq` commands."""
    out = subprocess.run([c.script("tinyq"), "--help"], capture_output=True, text=True).stdout
    return "--processes" in out


class Bench(c.System):
    name = "tinyq"
    db = DB
    bulk_api = "task.map, 1000 per call"

    @property
    def worker_note(self) -> str:  # type: ignore[override]
        two = "-p 2" if has_processes_flag() else "two `tinyq` processes (no -p yet)"
        return f"tinyq -w {THREADS}; 2 processes: {two}"

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
        command = [c.script("tinyq"), "-a", f"{__name__}.app", "-w", str(THREADS), "-l", "warn"]
        if processes == 1:
            return [command]
        if has_processes_flag():
            return [[*command, "-p", str(processes)]]
        return [command] * processes

    def close(self) -> None:
        app.close()
        super().close()
