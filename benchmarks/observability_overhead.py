"""The per-job cost of the first-party observability plugins:
`python -m benchmarks.observability_overhead`.

As benchmarks/hooks_overhead.py (a memory broker, the inline executor, N jobs enqueued one
by one then drained by a burst worker, the median of several interleaved runs), with:

* none: an application without plugins;
* prometheus: ``PrometheusMetrics`` on a registry of its own (counters, histograms, the
  in-flight gauge: what ``tinyq --metrics-port`` records per job);
* otel: ``OpenTelemetryPlugin`` with an SDK TracerProvider whose spans go nowhere (a
  processor that drops them), so the cost is making the spans, not exporting them.
"""

from __future__ import annotations

import argparse
import statistics
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


if __name__ == "__main__":
    main()
