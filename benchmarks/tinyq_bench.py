"""tinyq: `delay()` one by one, `map()` in chunks of 1000, the `tinyq` command."""

from __future__ import annotations

import subprocess
from functools import cache

from tinyq_core import Application

from . import _common as c
from ._families import TinyqSystem

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


class Bench(TinyqSystem):
    name = "tinyq"
    db = DB
    app, task = app, add

    @property
    def worker_note(self) -> str:  # type: ignore[override]
        two = "-p 2" if has_processes_flag() else "two `tinyq` processes (no -p yet)"
        return f"tinyq -w {THREADS}; 2 processes: {two}"

    def worker_commands(self, processes: int) -> list[list[str]]:
        command = self.tinyq_command(THREADS)
        if processes == 1:
            return [command]
        if has_processes_flag():
            return [[*command, "-p", str(processes)]]
        return [command] * processes
