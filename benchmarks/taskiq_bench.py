"""taskiq with taskiq-redis's `RedisStreamBroker` (acknowledged; its `ListQueueBroker` is
at-most-once): `kiq()` one by one (no bulk enqueue), `taskiq worker --workers P`."""

from __future__ import annotations

import time
from pathlib import Path

from taskiq_redis import RedisStreamBroker

from . import _common as c

DB = 7
# consumer_id="0": a consumer group created after jobs were enqueued still reads them
broker = RedisStreamBroker(url=c.url(DB), consumer_id="0")


@broker.task
async def add(m: int, n: int) -> int:
    await c.arecord(DB)
    return m + n


class Bench(c.AsyncSystem):
    name = "taskiq"
    db = DB
    worker_note = "taskiq worker --workers 1|2 (RedisStreamBroker; max 100 async tasks each)"

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        self.started = False

    def _startup(self) -> None:
        if not self.started:
            self.run(broker.startup())
            self.started = True

    def enqueue_one(self, n: int) -> None:
        self._startup()

        async def go() -> None:
            for i in range(n):
                await add.kiq(i, i)

        self.run(go())

    def enqueue_timed(self, i: int) -> float:
        self._startup()

        async def go() -> float:
            t0 = time.time()
            await add.kiq(i, i)
            return t0

        return self.run(go())

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[c.script("taskiq"), "worker", f"{__name__}:broker", "--workers",
                 str(processes), "--log-level", "WARNING"]]

    def close(self) -> None:
        if self.started:
            self.run(broker.shutdown())
        super().close()
