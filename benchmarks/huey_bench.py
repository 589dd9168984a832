"""Huey: calling the task enqueues it (one by one; `task.map` is a loop of single enqueues, not
a bulk API), `huey_consumer` with threads in one process, or 2 processes."""

from __future__ import annotations

from huey import RedisHuey

from . import _common as c
from ._families import HueySystem

DB = 5
THREADS = 8
huey = RedisHuey("bench", url=c.url(DB))


@huey.task()
def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Bench(HueySystem):
    name = "huey"
    db = DB
    task = add
    worker_note = f"huey_consumer -k thread -w {THREADS}; 2 processes: -k process -w 2"

    def worker_commands(self, processes: int) -> list[list[str]]:
        kind = ["-k", "thread", "-w", str(THREADS)] if processes == 1 else \
            ["-k", "process", "-w", str(processes)]
        return [self.consumer_command(*kind)]
