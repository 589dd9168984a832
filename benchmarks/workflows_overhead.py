"""The cost of a chord member against a plain job: `python -m benchmarks.workflows_overhead`.

N jobs of one small task, enqueued at once, then run by one burst worker: plain jobs
(``task.map``) against the members of one chord (``chord([...], callback).delay()``), the
cases interleaved, the median of several runs, per job. On the memory broker (inline
executor: the CPU cost only) and on a throwaway redis-server (8 threads: the round trips a
member adds, its result stored before its report and the report itself)."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from tinyq_core import Application, chord
from tinyq_memory import MemoryBroker

from ._redis_server import RedisServer


def one_run(url: str | None, jobs: int, members: bool) -> tuple[float, float]:
    """(enqueue, run) seconds per job."""
    app = Application(url or MemoryBroker())

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    @app.task(name="total")
    def total(values: list[int]) -> int:
        return sum(values)

    started = time.perf_counter()
    if members:
        handle: Any = chord([add.s(i, 1) for i in range(jobs)], total.s()).delay()
    else:
        add.map((i, 1) for i in range(jobs))
    enqueued = time.perf_counter()
    if url is None:
        app.worker(concurrency=1, executor="inline").run(burst=True)
    else:
        app.worker(concurrency=8).run(burst=True)
    ran = time.perf_counter()
    if members:
        assert handle.result(0) == sum(i + 1 for i in range(jobs))
    app.close()
    return (enqueued - started) / jobs, (ran - enqueued) / jobs


def measure(url: str | None, jobs: int, runs: int) -> dict[str, tuple[float, float]]:
    one_run(url, min(jobs, 1000), True)  # warm up
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "chord member": []}
    for _ in range(runs):
        for name in times:
            times[name].append(one_run(url, jobs, name == "chord member"))
    return {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
            for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        for where, url in (("memory", None), ("redis", server.url)):
            result = measure(url, args.jobs, args.runs)
            plain = result["plain"]
            for name, (enqueue, run) in result.items():
                print(f"{where:6} {name:12} enqueue {enqueue * 1e6:7.1f} us/job   run "
                      f"{run * 1e6:7.1f} us/job   (run: {run / plain[1]:.2f}x plain)")
    finally:
        server.close()


if __name__ == "__main__":
    main()
