"""The per-job cost of limits and workflows: `python -m benchmarks.job_overhead`.

Four cases of a task doing nothing, in one run, on a throwaway redis-server (and the memory
broker):

* plain: no limit;
* rate: ``rate_limit="1000000/s"``: every job books a slot (one script call) that is due at
  once, so the figure is the booking's cost, not waiting;
* concurrency: ``concurrency=1000``: every job takes a leased slot and frees it after it ran
  (two calls), never waiting either;
* chord member: the N jobs are the members of one chord (``chord([...], callback)``): each
  member's report (its result with it) tells the chord's record it finished; the callback
  (one job more, reading the N results) runs too.

N jobs are enqueued in one batch, then drained by a burst worker (``-w`` threads); the time
per job is from the first job's start to the last one's end (the worker's start and its burst
end are left out: they are the same for every case, and with a few thousand jobs they would
be most of the figure); the median of several interleaved runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "rate": {"rate_limit": "1000000/s"},
    "concurrency": {"concurrency": 1000},
    "chord member": {},
}


def one_run(make_broker: Callable[[], Any], case: str, jobs: int, threads: int) -> float:
    """Drain seconds per job of ``case``."""
    from tinyq_core import Application, chord

    app = Application(make_broker())
    runs: list[float] = []  # when each job ran (list.append is atomic)

    @app.task(name="noop", **CASES[case])
    def noop(n: int) -> None:
        runs.append(time.perf_counter())
        return None

    @app.task(name="count")
    def count(values: list[None]) -> int:
        runs.append(time.perf_counter())
        return len(values)

    if case == "chord member":
        handle = chord([noop.s(n) for n in range(jobs)], count.s()).delay()
    else:
        noop.map(range(jobs))
    worker = app.worker(concurrency=threads, scheduler=False)
    worker.run(burst=True)
    if case == "chord member":
        assert handle.result(0) == jobs and worker.processed == jobs + 1
    else:
        assert worker.processed == jobs, (case, worker.processed)
    app.close()
    return (max(runs) - min(runs)) / (len(runs) - 1)


def measure(make_broker: Callable[[], Any], jobs: int, threads: int, rounds: int
            ) -> dict[str, float]:
    runs: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(rounds):  # interleaved: the machine's drift hits every case alike
        for case in CASES:
            runs[case].append(one_run(make_broker, case, jobs, threads))
    return {case: statistics.median(times) for case, times in runs.items()}


def report(title: str, medians: dict[str, float]) -> None:
    plain = medians["plain"]
    print(f"\n{title}")
    print(f"{'case':<12} {'us/job':>8} {'jobs/s':>8} {'overhead us/job':>16}")
    for case, seconds in medians.items():
        print(f"{case:<12} {seconds * 1e6:8.1f} {1 / seconds:8.0f} "
              f"{(seconds - plain) * 1e6:16.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from benchmarks._redis_server import RedisServer
    from tinyq_memory import MemoryBroker
    from tinyq_redis import RedisBroker

    report(f"memory broker, {args.jobs} jobs, -w {args.threads}",
           measure(MemoryBroker, args.jobs, args.threads, args.rounds))
    server = RedisServer().start()
    try:
        def redis_broker() -> Any:
            return RedisBroker(server.url, prefix=f"b{uuid.uuid4().hex[:8]}")

        report(f"Redis {server.version()} (loopback), {args.jobs} jobs, -w {args.threads}",
               measure(redis_broker, args.jobs, args.threads, args.rounds))
    finally:
        server.close()


if __name__ == "__main__":
    main()
