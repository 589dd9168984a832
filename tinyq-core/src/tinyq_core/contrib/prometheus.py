"""Prometheus metrics for tinyq workers (``pip install 'tinyq-core[prometheus]'``).

A plugin on the public job lifecycle hooks: ``Application(plugins=[PrometheusMetrics()])``
and serve the registry yourself, or ``tinyq --metrics-port 9108``, which does both, for
``-p N`` too (prometheus_client's multiprocess mode: see docs/observability.md). Queue sizes
are read from the broker's admin tier when scraped, by :class:`QueueSizeCollector`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..plugin import BrokerAdmin, Delivery, Job, QueueCounts, hookimpl

__all__ = ["PrometheusMetrics", "QueueSizeCollector"]

logger = logging.getLogger("tinyq.prometheus")

# Seconds: jobs from a millisecond to ten minutes; waits up to an hour.
RUN_BUCKETS = (.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600)
WAIT_BUCKETS = (.005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600)


class PrometheusMetrics:
    """The worker's metrics, on ``registry`` (prometheus_client's default one unless given).
    One instance per registry: the metric names can be registered once."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        labels = ("task", "queue")
        self.jobs = Counter("tinyq_jobs", "Job runs ended, by outcome (a timed-out or failed "
                            "run is also counted as retried or dead_lettered)",
                            (*labels, "outcome"), registry=registry)
        self.run_seconds = Histogram("tinyq_job_run_seconds", "Time a job's task ran",
                                     labels, buckets=RUN_BUCKETS, registry=registry)
        self.wait_seconds = Histogram("tinyq_job_queue_wait_seconds", "Time from enqueue to "
                                      "the start of a job's first run", labels,
                                      buckets=WAIT_BUCKETS, registry=registry)
        # livesum: in multiprocess mode the sum over the processes still alive.
        self.in_flight = Gauge("tinyq_jobs_in_flight", "Jobs running now", labels,
                               registry=registry, multiprocess_mode="livesum")
        self.up = Gauge("tinyq_worker_up", "Worker processes running (1 each)",
                        registry=registry, multiprocess_mode="livesum")

    def _count(self, job: Job, outcome: str) -> None:
        self.jobs.labels(job.task_name, job.queue, outcome).inc()

    @hookimpl
    def tinyq_worker_started(self) -> None:
        self.up.set(1)

    @hookimpl
    def tinyq_worker_stopping(self) -> None:
        self.up.set(0)

    @hookimpl
    def tinyq_job_received(self, job: Job) -> None:
        # A retry keeps the first enqueue time: its wait would count the earlier runs and
        # the backoff, so only first runs are measured.
        if job.enqueued_at is not None and job.retries == 0:
            wait = max(0.0, time.time() - job.enqueued_at)
            self.wait_seconds.labels(job.task_name, job.queue).observe(wait)

    @hookimpl(wrapper=True)
    def tinyq_run_job(self, job: Job) -> Generator[None, Any, Any]:
        in_flight = self.in_flight.labels(job.task_name, job.queue)
        in_flight.inc()
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            self.run_seconds.labels(job.task_name, job.queue).observe(
                time.perf_counter() - started)
            in_flight.dec()

    @hookimpl
    def tinyq_job_succeeded(self, job: Job) -> None:
        self._count(job, "succeeded")

    @hookimpl
    def tinyq_job_failed(self, job: Job) -> None:
        self._count(job, "failed")

    @hookimpl
    def tinyq_job_retried(self, job: Job) -> None:
        self._count(job, "retried")

    @hookimpl
    def tinyq_job_timed_out(self, job: Job) -> None:
        self._count(job, "timed_out")

    @hookimpl
    def tinyq_job_cancelled(self, job: Job) -> None:
        self._count(job, "cancelled")

    @hookimpl
    def tinyq_job_expired(self, job: Job) -> None:
        self._count(job, "expired")

    @hookimpl
    def tinyq_job_dead_lettered(self, delivery: Delivery, job: Job | None) -> None:
        # A message that never decoded has no task: counted under task "".
        self.jobs.labels("" if job is None else job.task_name, delivery.queue,
                         "dead_lettered").inc()


class QueueSizeCollector(Collector):
    """``tinyq_queue_messages{queue, state}`` read from ``admin.counts()`` at scrape time.
    The cost is bounded: ``queues()`` names the queues (a few exact reads each), and a result
    younger than ``max_age`` seconds is served again, so a burst of scrapes costs one read."""

    def __init__(self, admin: BrokerAdmin, queues: Callable[[], Iterable[str]],
                 max_age: float = 1.0) -> None:
        self._admin, self._queues, self._max_age = admin, queues, max_age
        self._lock = threading.Lock()
        self._read_at = -max_age
        self._counts: dict[str, QueueCounts] = {}

    def _read(self) -> dict[str, QueueCounts]:
        with self._lock:
            if time.monotonic() - self._read_at >= self._max_age:
                try:
                    self._counts = {q: self._admin.counts(q) for q in self._queues()}
                except Exception as exc:  # a broker outage leaves the gauges out, not /metrics
                    logger.warning("Queue sizes not read for /metrics: %s", exc)
                    self._counts = {}
                self._read_at = time.monotonic()
            return self._counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("tinyq_queue_messages", "Messages of a queue by state "
                                   "(ready, scheduled, leased, dead)", labels=("queue", "state"))
        for queue, counts in sorted(self._read().items()):
            for state in ("ready", "scheduled", "leased", "dead"):
                family.add_metric((queue, state), getattr(counts, state))
        yield family
