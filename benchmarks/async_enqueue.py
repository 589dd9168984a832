"""`python -m benchmarks.async_enqueue`: enqueue N jobs one by one from a running event loop
(each awaited before the next, as a web handler does), on a throwaway Redis.

Systems (those installed): tinyq's `await add.adelay(i, i)`, and for reference tinyq's
blocking `add.delay(i, i)` called from the loop (what an app did before the awaitable API:
fast, but it blocks the loop for each round trip). Peers (arq, taskiq, SAQ) plug in by adding
an entry to SYSTEMS: an async function that sets up on the running loop and returns the
enqueue coroutine function and a closing one. Every system gets its own database number, so
no system sees another's keys. Each run interleaves the systems; reported as the median
(min-max) of jobs/s over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from tinyq_core import Application

from . import _common as c
from ._redis_server import RedisServer

DASH = "\u2013"

Enqueue = Callable[[int], Awaitable[object]]
Close = Callable[[], Awaitable[None]]
Setup = Callable[[str], Awaitable[tuple[Enqueue, Close]]]


async def tinyq_adelay(url: str) -> tuple[Enqueue, Close]:
    app = Application(f"{url}?prefix=bench-{uuid.uuid4().hex[:8]}")

    @app.task(name="add")
    def add(m: int, n: int) -> None: ...

    async def close() -> None:
        await app.aclose()
        app.close()

    return (lambda i: add.adelay(i, i)), close


async def tinyq_blocking_delay(url: str) -> tuple[Enqueue, Close]:
    app = Application(f"{url}?prefix=bench-{uuid.uuid4().hex[:8]}")

    @app.task(name="add")
    def add(m: int, n: int) -> None: ...

    async def enqueue(i: int) -> object:
        return add.delay(i, i)  # blocks the loop for the round trip

    async def close() -> None:
        app.close()

    return enqueue, close


# name -> (the module it needs, its setup); a peer adds a line here.
SYSTEMS: dict[str, tuple[str, Setup]] = {
    "tinyq adelay": ("tinyq_core", tinyq_adelay),
    "tinyq delay (blocking, reference)": ("tinyq_core", tinyq_blocking_delay),
}


async def one_run(setup: Setup, url: str, n: int) -> float:
    enqueue, close = await setup(url)
    try:
        await enqueue(-1)  # warm-up: connect, load the script, check the server
        t0 = time.perf_counter()
        for i in range(n):
            await enqueue(i)
        return n / (time.perf_counter() - t0)
    finally:
        await close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.async_enqueue")
    parser.add_argument("--n", type=int, default=5_000, help="jobs per run (default: 5000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default: 3)")
    args = parser.parse_args(argv)
    systems = {name: setup for name, (module, setup) in SYSTEMS.items()
               if importlib.util.find_spec(module) is not None}
    server = RedisServer().start()
    try:
        print(f"redis-server {server.version()}, redis-py {importlib.metadata.version('redis')}"
              f", {os.cpu_count()} CPUs, {args.n:,} jobs per run", flush=True)
        rates: dict[str, list[float]] = {name: [] for name in systems}
        for run in range(1, args.runs + 1):
            for db, (name, setup) in enumerate(systems.items(), start=1):
                rate = asyncio.run(one_run(setup, f"{server.url}/{db}", args.n))
                rates[name].append(rate)
                print(f"run {run} {name}: {rate:,.0f} jobs/s", flush=True)
        print("\n| system | jobs/s, one by one from a running loop |\n|---|---:|")
        for name, values in rates.items():
            med, lo, hi = c.median_spread(values)
            print(f"| {name} | {med:,.0f} ({lo:,.0f}{DASH}{hi:,.0f}) |")
    finally:
        server.close()


if __name__ == "__main__":
    main()
