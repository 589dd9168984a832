"""`python -m benchmarks.async_drain`: an I/O-bound async workload drained by one worker
process: N jobs, each `await asyncio.sleep(0.05)` plus one async Redis call (a PING from a
redis.asyncio client made once per event loop), on a throwaway Redis.

Reported: jobs/s from the first job's start to the last job's end (each job records both in
Redis), and from spawning the worker to its exit, median and spread over --runs runs.

Only tinyq is here so far: a peer (arq, taskiq, SAQ) is one more entry in DRAINERS, a function
that writes its app into a folder, enqueues N jobs, and returns the worker command to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from ._redis_server import RedisServer

TINYQ_APP = '''
import asyncio, os, time
import redis.asyncio
from tinyq_core import Application

app = Application(os.environ["BENCH_URL"])
_clients = {}

def client():
    loop = asyncio.get_running_loop()  # one client per event loop
    if loop not in _clients:
        _clients[loop] = redis.asyncio.Redis.from_url(os.environ["BENCH_REDIS"])
    return _clients[loop]

@app.task(name="io")
async def io(i):
    began = time.time()
    await asyncio.sleep(0.05)
    await client().ping()
    await client().rpush("bench:spans", f"{began} {time.time()}")
'''


def tinyq(folder: Path, url: str, n: int, concurrency: int) -> list[str]:
    (folder / "bench_app.py").write_text(TINYQ_APP)
    sys.path.insert(0, str(folder))
    os.environ["BENCH_URL"] = url
    try:
        import bench_app
        bench_app.app.tasks["io"].map([(i,) for i in range(n)])
        bench_app.app.close()
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("bench_app", None)
    return [sys.executable, "-m", "tinyq_core", "-a", "bench_app.app", "-w", "1",
            "--async-concurrency", str(concurrency), "--burst"]


# name -> (folder, url, n, concurrency) -> the worker command, after enqueueing n jobs
DRAINERS: dict[str, Callable[[Path, str, int, int], list[str]]] = {"tinyq": tinyq}


def drain_once(system: str, server: RedisServer, n: int, concurrency: int) -> tuple[float, float]:
    url = f"{server.url}/1"
    r = redis.Redis.from_url(url)
    r.flushdb()
    with tempfile.TemporaryDirectory(prefix="tinyq-async-bench-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "BENCH_URL": url, "BENCH_REDIS": url,
               "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
        command = DRAINERS[system](folder, url, n, concurrency)
        began = time.time()
        subprocess.run(command, cwd=folder, env=env, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
        ended = time.time()
    spans = [tuple(map(float, s.split())) for s in r.lrange("bench:spans", 0, -1)]
    if len(spans) != n:
        raise SystemExit(f"{system}: {len(spans)} of {n} jobs ran")
    first = min(s[0] for s in spans)
    last = max(s[1] for s in spans)
    return n / (last - first), n / (ended - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.async_drain",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="jobs (default: 5000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default: 3)")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="async jobs at a time in the worker (default: 100)")
    parser.add_argument("--systems", default=",".join(DRAINERS),
                        help=f"comma-separated, of: {', '.join(DRAINERS)}")
    args = parser.parse_args(argv)
    server = RedisServer().start()
    try:
        for system in args.systems.split(","):
            rates = [drain_once(system, server, args.n, args.concurrency)
                     for _ in range(args.runs)]
            run_rates = [r[0] for r in rates]
            spawn_rates = [r[1] for r in rates]
            print(f"{system}: {args.n} async I/O jobs, concurrency {args.concurrency}: "
                  f"{statistics.median(run_rates):,.0f} jobs/s first-to-last "
                  f"({min(run_rates):,.0f}-{max(run_rates):,.0f}), "
                  f"{statistics.median(spawn_rates):,.0f} jobs/s from spawn "
                  f"({min(spawn_rates):,.0f}-{max(spawn_rates):,.0f})")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
