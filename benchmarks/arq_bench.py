"""arq: `enqueue_job()` one by one (no bulk enqueue), the `arq` command; 2 processes are two
`arq` commands. Not in the `bench` extra: arq pins redis<6 (run it from its own environment).

arq's worker polls its queue (a sorted set) every `poll_delay`, 0.5 s by default, which is then
its latency; the worker here polls every 10 ms, with arq's default max_jobs of 10."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from . import _common as c

DB = 6
POLL_DELAY = 0.01
MAX_JOBS = 10


async def add(ctx: dict[str, Any], m: int, n: int) -> int:
    await c.arecord(DB)
    return m + n


async def quiet(ctx: dict[str, Any]) -> None:
    """arq's command logs every job at INFO; run at warning level like the other workers."""
    logging.getLogger("arq").setLevel(logging.WARNING)


class WorkerSettings:
    functions = [add]
    redis_settings = RedisSettings.from_dsn(c.url(DB))
    on_startup = quiet
    poll_delay = POLL_DELAY
    max_jobs = MAX_JOBS


class Bench(c.AsyncSystem):
    name = "arq"
    db = DB
    worker_note = (f"arq WorkerSettings, poll_delay {POLL_DELAY} s, max_jobs {MAX_JOBS}; "
                   "2 processes: two `arq`")

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        self.pool: ArqRedis = self.run(create_pool(WorkerSettings.redis_settings))

    def enqueue_one(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self.pool.enqueue_job("add", i, i)

        self.run(go())

    def enqueue_timed(self, i: int) -> float:
        async def go() -> float:
            t0 = time.time()
            await self.pool.enqueue_job("add", i, i)
            return t0

        return self.run(go())

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[c.script("arq"), f"{__name__}.WorkerSettings"]] * processes

    def close(self) -> None:
        self.run(self.pool.aclose())
        super().close()
