"""Celery: `delay()` one by one (it has no bulk enqueue: `group` sends one message per task),
`celery worker` with the threads pool in one process, prefork with 2 processes.

No result backend (Celery's default). The database is never flushed between scenarios: a
producer remembers that it declared its queue's binding, so the queue is purged instead."""

from __future__ import annotations

import time

from celery import Celery

from . import _common as c

DB = 3
THREADS = 8
app = Celery("bench", broker=c.url(DB))
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=True)


@app.task
def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Bench(c.System):
    name = "celery"
    db = DB
    worker_note = (f"celery worker -P threads -c {THREADS}; 2 processes: -P prefork -c 2; "
                   "--without-gossip --without-mingle --without-heartbeat")

    def enqueue_one(self, n: int) -> None:
        for i in range(n):
            add.delay(i, i)

    def enqueue_timed(self, i: int) -> float:
        t0 = time.time()
        add.delay(i, i)
        return t0

    def reset(self) -> None:
        app.control.purge()
        self.redis.delete(c.COUNT, c.FIRST, c.LAST)

    def worker_commands(self, processes: int) -> list[list[str]]:
        pool = ["-P", "threads", "-c", str(THREADS)] if processes == 1 else \
            ["-P", "prefork", "-c", str(processes)]
        return [[c.script("celery"), "-A", __name__, "worker", *pool, "-l", "warning",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"]]

    def close(self) -> None:
        app.close()
        super().close()
