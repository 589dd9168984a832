"""What the two tinyq systems (Redis, SQLite) and the two Huey systems (Redis, SQLite) share:
how they enqueue and the command that runs their workers; only the broker differs."""

from __future__ import annotations

import time
from typing import Any

from . import _common as c


class TinyqSystem(c.System):
    """tinyq: `delay()` one by one, `map()` in chunks of 1000, the `tinyq` command. Subclasses
    set `app` and `task` (the module's `add`)."""

    bulk_api = "task.map, 1000 per call"
    app: Any  # tinyq_core.Application
    task: Any  # a tinyq Task of `app`

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            self.task.delay(i, i)

    def enqueue_bulk(self, n: int) -> None:
        for start in range(0, n, 1000):
            self.task.map([(i, i) for i in range(start, min(n, start + 1000))])

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        self.task.delay(i, i)
        return t0

    def tinyq_command(self, threads: int) -> list[str]:
        """`tinyq` on the subclass's module's `app`, `threads` threads, quiet."""
        return [c.script("tinyq"), "-a", f"{type(self).__module__}.app", "-w", str(threads),
                "-l", "warn"]

    def close(self) -> None:
        self.app.close()
        super().close()


class HueySystem(c.System):
    """Huey: calling the task enqueues it (one by one; `task.map` is a loop of single
    enqueues, not a bulk API). Subclasses set `task` (the module's `add`)."""

    task: Any  # a Huey TaskWrapper

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            self.task(i, i)

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        self.task(i, i)
        return t0

    def consumer_command(self, *options: str) -> list[str]:
        """`huey_consumer` on the subclass's module's `huey`, without the periodic scheduler
        (`-n`, the benchmark has no periodic task), quiet."""
        return [c.script("huey_consumer"), f"{type(self).__module__}.huey", *options, "-n", "-q"]
