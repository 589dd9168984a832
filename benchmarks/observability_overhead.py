"""The per-job cost of the first-party observability plugins:
`python -m benchmarks.observability_overhead`.

As benchmarks/hooks_overhead.py (a memory broker, the inline executor, N jobs enqueued one
by one then drained by a burst worker, the median of several interleaved runs), with:

* none: an application without plugins;
* prometheus: ``PrometheusMetrics`` on a registry of its own (counters, histograms, the
  in-flight gauge: what ``tinyq --metrics-port`` records per job);
* otel: ``OpenTelemetryPlugin`` with an SDK TracerProvider whose spans go nowhere (a
  processor that drops them), so the cost is making the spans, not exporting them.

The end-to-end figures carry the machine's noise (±10-20 us per job on a busy one); the
plugin's own work per job is also timed alone: its hooks called as the producer and the
worker call them for one successful job (the best of several repeats), which is stable.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from typing import Any

from benchmarks.hooks_overhead import one_run


class DropSpans:
    """A span processor that keeps nothing."""

    def on_start(self, span: Any, parent_context: Any = None) -> None: ...

    def on_end(self, span: Any) -> None: ...

    def shutdown(self) -> None: ...

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def cases() -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from tinyq_core.contrib.prometheus import PrometheusMetrics

    found: dict[str, Any] = {
        "none": lambda: [],
        "prometheus": lambda: [PrometheusMetrics(CollectorRegistry())],
    }
    try:
        from opentelemetry.sdk.trace import TracerProvider

        from tinyq_core.contrib.otel import OpenTelemetryPlugin
    except ImportError:
        return found

    def otel() -> list[Any]:
        provider = TracerProvider()
        provider.add_span_processor(DropSpans())  # type: ignore[arg-type]
        return [OpenTelemetryPlugin(provider)]

    found["otel"] = otel
    return found


def hooks_alone(plugins: list[Any], number: int = 20_000) -> float:
    """Seconds per job of the plugins' hooks for one successful job, called as tinyq does."""
    from tinyq_core import Application
    from tinyq_core._current import RunningJob, job_running
    from tinyq_core.plugin import Job
    from tinyq_memory import MemoryBroker

    hooks = Application(MemoryBroker(), plugins=plugins).registry.hooks
    job = Job(id="x" * 32, task_name="add", args=(1, 2), kwargs={}, queue="default",
              enqueued_at=time.time())
    running = RunningJob(job)

    def one_job() -> None:
        hooks.call("tinyq_before_enqueue", job=job, headers={})
        hooks.call("tinyq_after_enqueue", job=job)
        hooks.call("tinyq_job_received", job=job, attempt=1)
        with job_running(running):
            hooks.around({"job": job}, lambda: None)
        hooks.call("tinyq_job_succeeded", job=job, value=None, duration=0.0)

    return min(timeit.repeat(one_job, number=number, repeat=5)) / number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    makers = cases()
    one_run([], 2000)  # warm up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in makers}
    for _ in range(args.runs):
        for name, make in makers.items():
            times[name].append(one_run(make(), args.jobs))
    print(f"{args.jobs:,} jobs, {args.runs} runs, us per job: median (best)")
    print(f"{'case':<12}{'enqueue':>18}{'drain':>18}{'added (median)':>18}")
    base = [statistics.median(r[i] * 1e6 for r in times["none"]) for i in (0, 1)]
    for name, runs in times.items():
        cells, added = [], 0.0
        for i in (0, 1):
            values = [r[i] * 1e6 for r in runs]
            cells.append(f"{statistics.median(values):.1f} ({min(values):.1f})")
            added += statistics.median(values) - base[i]
        print(f"{name:<12}{cells[0]:>18}{cells[1]:>18}{added:>18.1f}")
    base_alone = hooks_alone([])
    for name, make in makers.items():
        if name != "none":
            alone = (hooks_alone(make()) - base_alone) * 1e6
            print(f"{name}: its hooks for one job, timed alone: {alone:.1f} us")


if __name__ == "__main__":
    main()
