"""The cost of the job lifecycle hooks, per job: `python -m benchmarks.hooks_overhead`.

A memory broker, the inline executor, N jobs enqueued with map() then drained by a burst
worker; the median of several runs per case, the cases interleaved:

* none: an application without plugins (run this file with /work/main's tinyq first on the
  path too, to compare with the code before the hooks);
* no-op plugin: a plugin implementing none of the lifecycle hooks (the cost of having a
  plugin at all: nothing, the hooks are looked up once);
* every hook: a plugin implementing every per-job hook with a no-op (the cost of calling).

Also: the per-job checks tinyq makes when no hook is implemented, timed alone, and the
function calls per job (cProfile), which do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import timeit
from collections.abc import Generator
from typing import Any

from tinyq_core import Application
from tinyq_core._hooks import HookSpecs, hookimpl
from tinyq_memory import MemoryBroker

HAS_HOOKS = hasattr(HookSpecs, "tinyq_run_job")  # False on the code before the hooks


class NoLifecycleHooks:
    """A plugin that implements nothing tinyq calls per job."""


class EveryHook:
    """No-op implementations of every per-job hook."""

    if HAS_HOOKS:
        @hookimpl
        def tinyq_before_enqueue(self, headers: dict[str, str]) -> None: ...

        @hookimpl
        def tinyq_after_enqueue(self) -> None: ...

        @hookimpl
        def tinyq_job_received(self) -> None: ...

        @hookimpl(wrapper=True)
        def tinyq_run_job(self) -> Generator[None, Any, Any]:
            return (yield)

        @hookimpl
        def tinyq_job_succeeded(self) -> None: ...


def one_run(plugins: list[Any], jobs: int) -> tuple[float, float]:
    """(enqueue, drain) seconds per job."""
    app = Application(MemoryBroker(), plugins=plugins) if plugins else Application(
        MemoryBroker())

    @app.task()
    def add(m: int, n: int) -> int:
        return m + n

    started = time.perf_counter()
    for i in range(jobs):
        add.delay(i, 1)
    enqueued = time.perf_counter()
    app.worker(concurrency=1, executor="inline").run(burst=True)
    drained = time.perf_counter()
    return (enqueued - started) / jobs, (drained - enqueued) / jobs


def calls_per_job(jobs: int = 2000) -> tuple[float, float]:
    """Python function calls per job (enqueue, drain) with no plugin, counted by cProfile:
    exact where timings on a busy machine are not; compare with the code before the hooks."""
    app = Application(MemoryBroker())

    @app.task()
    def add(m: int, n: int) -> int:
        return m + n

    counts = []
    for step in (lambda: [add.delay(i, 1) for i in range(jobs)],
                 lambda: app.worker(concurrency=1, executor="inline").run(burst=True)):
        profile = cProfile.Profile()
        profile.runcall(step)
        counts.append(pstats.Stats(profile).total_calls / jobs)  # type: ignore[attr-defined]
    return counts[0], counts[1]


def checks_when_none() -> float:
    """Seconds per job of the truth tests tinyq makes when no hook is implemented."""
    if not HAS_HOOKS:
        return 0.0
    hooks = Application(MemoryBroker()).registry.hooks
    number = 1_000_000

    def per_job() -> None:
        _ = hooks.before_enqueue, hooks.after_enqueue  # producer
        _ = hooks.received or hooks.recovered  # fetcher
        _ = hooks.run_job, hooks.settles  # runner

    return timeit.timeit(per_job, number=number) / number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cases: dict[str, list[Any]] = {"none": [], "no-op plugin": [NoLifecycleHooks()]}
    if HAS_HOOKS:
        cases["every hook"] = [EveryHook()]
    one_run([], 2000)  # warm up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, plugins in cases.items():
            times[name].append(one_run(plugins, args.jobs))
    print(f"{args.jobs:,} jobs, {args.runs} runs, us per job: median (best)")
    print(f"{'case':<14}{'enqueue':>18}{'drain':>18}")
    for name, runs in times.items():
        cells = []
        for i in (0, 1):
            values = [r[i] * 1e6 for r in runs]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f})")
        print(f"{name:<14}{cells[0]:>18}{cells[1]:>18}")
    print(f"checks made per job with no hook implemented: {checks_when_none() * 1e6:.3f} us")
    enqueue_calls, drain_calls = calls_per_job()
    print(f"function calls per job, no plugin: enqueue {enqueue_calls:.1f}, "
          f"drain {drain_calls:.1f}")


if __name__ == "__main__":
    main()
