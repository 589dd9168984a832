"""RQ: `Queue.enqueue` one by one, `Queue.enqueue_many` in chunks of 1000, `rq worker`.

The worker class is `SimpleWorker` (jobs run in the worker process): RQ's default `Worker`
forks a work horse per job, which caps it at a few dozen jobs/s on this kind of task."""

from __future__ import annotations

import time
from pathlib import Path

from redis import Redis
from rq import Queue

from . import _common as c

DB = 2


def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Bench(c.System):
    name = "rq"
    db = DB
    bulk_api = "Queue.enqueue_many, 1000 per call"
    worker_note = "rq worker -w rq.worker.SimpleWorker; 2 processes: two `rq worker`"

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        self.queue = Queue("default", connection=Redis.from_url(c.url(DB)))

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            self.queue.enqueue(add, i, i)

    def enqueue_bulk(self, n: int) -> None:
        for start in range(0, n, 1000):
            self.queue.enqueue_many(
                [Queue.prepare_data(add, (i, i)) for i in range(start, min(n, start + 1000))]
            )

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        self.queue.enqueue(add, i, i)
        return t0

    def worker_commands(self, processes: int) -> list[list[str]]:
        command = [c.script("rq"), "worker", "-u", c.url(DB), "-w", "rq.worker.SimpleWorker",
                   "--logging_level", "WARNING", "--disable-job-desc-logging", "default"]
        return [command] * processes
