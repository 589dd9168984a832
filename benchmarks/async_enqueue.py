"""`python -m benchmarks.async_enqueue`: enqueue N jobs one by one from a running event loop
(each awaited before the next, as a web handler does), on a throwaway Redis.

Systems: tinyq's `await add.adelay(i, i)`, and for reference tinyq's blocking
`add.delay(i, i)` called from the loop (what an app did before the awaitable API: fast, but it
blocks the loop for each round trip), both in this process (SYSTEMS); and the peers (PEERS:
arq's `enqueue_job`, taskiq's `kiq` on RedisStreamBroker, SAQ's `enqueue`), each from its own
venv (`python -m benchmarks.peer_envs`; skipped when absent) running its app's `rate(n)`
(benchmarks/_async_apps.py) in a subprocess that prints jobs/s. Every system gets its own
database number, so no system sees another's keys. Each run interleaves the systems; reported
as the median (min-max) of jobs/s over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from tinyq_core import Application

from . import _async_apps as apps
from . import _common as c
from . import peer_envs
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


# peer -> (its venv in peer_envs, its app: `rate(n)` prints jobs/s)
PEERS: dict[str, tuple[str, str]] = {
    "arq enqueue_job": ("arq", apps.ARQ),
    "taskiq kiq (RedisStreamBroker)": ("taskiq", apps.TASKIQ),
    "saq enqueue": ("saq", apps.SAQ),
}


def peer_run(venv: str, app: str, url: str, n: int) -> float:
    """One run of a peer: its venv's python, in a folder holding only its app."""
    with tempfile.TemporaryDirectory(prefix="tinyq-async-enqueue-") as tmp:
        (Path(tmp) / "bench_app.py").write_text(app)
        env = {**os.environ, "BENCH_URL": url, "BENCH_REDIS": url, "PYTHONPATH": tmp}
        out = subprocess.run([str(peer_envs.python(venv)), "-c",
                              f"import bench_app; bench_app.rate({n})"], cwd=tmp, env=env,
                             check=True, capture_output=True, text=True, timeout=600).stdout
    return float(out.split()[-1])


def runners(n: int) -> dict[str, Callable[[str], float]]:
    """name -> (url -> jobs/s): the tinyq systems in this process, the peers with a venv."""
    found: dict[str, Callable[[str], float]] = {}
    for name, (module, setup) in SYSTEMS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = lambda url, setup=setup: asyncio.run(one_run(setup, url, n))
    for name, (venv, app) in PEERS.items():
        if peer_envs.available(venv):
            found[name] = lambda url, venv=venv, app=app: peer_run(venv, app, url, n)
        else:
            print(peer_envs.how_to_create(venv), flush=True)
    return found


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


def run(server: RedisServer, n: int, runs: int) -> list[str]:
    """Every system, interleaved within each run; returns the Markdown table's lines."""
    systems = runners(n)
    rates: dict[str, list[float]] = {name: [] for name in systems}
    for number in range(1, runs + 1):
        for db, (name, measure) in enumerate(systems.items(), start=1):
            rate = measure(f"{server.url}/{db}")
            rates[name].append(rate)
            print(f"run {number} {name}: {rate:,.0f} jobs/s", flush=True)
    lines = ["| system | jobs/s, one by one from a running loop |", "|---|---:|"]
    for name, values in rates.items():
        med, lo, hi = c.median_spread(values)
        lines.append(f"| {name} | {med:,.0f} ({lo:,.0f}{DASH}{hi:,.0f}) |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.async_enqueue")
    parser.add_argument("--n", type=int, default=2_000, help="jobs per run (default: 2000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default: 3)")
    args = parser.parse_args(argv)
    server = RedisServer().start()
    try:
        print(f"redis-server {server.version()}, redis-py {importlib.metadata.version('redis')}"
              f"; {peer_envs.describe(list(peer_envs.PEERS))}; {os.cpu_count()} CPUs, "
              f"{args.n:,} jobs per run", flush=True)
        print("\n".join(["", *run(server, args.n, args.runs)]))
    finally:
        server.close()


if __name__ == "__main__":
    main()
