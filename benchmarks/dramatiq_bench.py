"""Dramatiq: `send()` one by one (no bulk enqueue: `group` sends one message per actor call),
`dramatiq module --processes P --threads 8`.

The actor returns nothing: without the Results middleware Dramatiq discards a return value and
logs a warning for every job, which would measure its logging instead."""

from __future__ import annotations

import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from . import _common as c

DB = 4
THREADS = 8
broker = RedisBroker(url=c.url(DB))
dramatiq.set_broker(broker)


@dramatiq.actor
def add(m: int, n: int) -> None:
    c.record(DB)


class Bench(c.System):
    name = "dramatiq"
    db = DB
    worker_note = f"dramatiq --processes 1|2 --threads {THREADS}"

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            add.send(i, i)

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        add.send(i, i)
        return t0

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[c.script("dramatiq"), __name__, "--processes", str(processes),
                 "--threads", str(THREADS)]]

    def close(self) -> None:
        broker.close()
        super().close()
