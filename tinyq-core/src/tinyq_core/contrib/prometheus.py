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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .._outcomes import (
    CANCELLED,
    DEAD_LETTERED,
    EXPIRED,
    FAILED,
    RETRIED,
    SUCCEEDED,
    TIMED_OUT,
)
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
        # outcome: a word of _outcomes.OUTCOMES, as in the worker's log lines.
        self.jobs = Counter("tinyq_jobs", "Jobs ended, by outcome (a timed-out or failed "
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
        # The labelled children by (metric, labels): prometheus_client's labels() validates
        # and locks at every call, a quarter of this plugin's cost per job.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:  # two threads racing here get the same child from labels()
            child = self._children[key] = metric.labels(*values)
        return child

    def _count(self, job: Job, outcome: str) -> None:
        self._child(self.jobs, job.task_name, job.queue, outcome).inc()

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
            self._child(self.wait_seconds, job.task_name, job.queue).observe(wait)

    @hookimpl(wrapper=True)
    def tinyq_run_job(self, job: Job) -> Generator[None, Any, Any]:
        in_flight = self._child(self.in_flight, job.task_name, job.queue)
        in_flight.inc()
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            self._child(self.run_seconds, job.task_name, job.queue).observe(
                time.perf_counter() - started)
            in_flight.dec()

    @hookimpl
    def tinyq_job_succeeded(self, job: Job) -> None:
        self._count(job, SUCCEEDED)

    @hookimpl
    def tinyq_job_failed(self, job: Job) -> None:
        self._count(job, FAILED)

    @hookimpl
    def tinyq_job_retried(self, job: Job) -> None:
        self._count(job, RETRIED)

    @hookimpl
    def tinyq_job_timed_out(self, job: Job) -> None:
        self._count(job, TIMED_OUT)

    @hookimpl
    def tinyq_job_cancelled(self, job: Job) -> None:
        self._count(job, CANCELLED)

    @hookimpl
    def tinyq_job_expired(self, job: Job) -> None:
        self._count(job, EXPIRED)

    @hookimpl
    def tinyq_job_dead_lettered(self, delivery: Delivery, job: Job | None) -> None:
        # A message that never decoded has no task: counted under task "".
        self.jobs.labels("" if job is None else job.task_name, delivery.queue,
                         DEAD_LETTERED).inc()


class QueueSizeCollector(Collector):
    """``tinyq_queue_messages{queue, state}`` read from ``admin.counts()`` at scrape time.
    The cost is bounded: ``queues()`` names the queues (a few exact reads each), and a result
    younger than ``max_age`` seconds is served again, so a burst of scrapes costs one read.

    So is the time: the read runs in a helper thread (one at most, the next read starts only
    once it returned) and a scrape waits for it ``timeout`` seconds at most. A read that fails
    or is late leaves the gauge without samples in that scrape and counts one in
    ``tinyq_queue_size_errors_total``; the other metrics are served as usual."""

    def __init__(self, admin: BrokerAdmin, queues: Callable[[], Iterable[str]],
                 max_age: float = 1.0, timeout: float = 2.0) -> None:
        self._admin, self._queues, self._max_age = admin, queues, max_age
        self._timeout = timeout
        self._lock = threading.Lock()
        self._read_at = -max_age
        self._counts: dict[str, QueueCounts] = {}
        self._errors = 0
        self._reader: threading.Thread | None = None
        self._done = threading.Event()
        self._result: tuple[dict[str, QueueCounts], BaseException | None] = ({}, None)

    def _fetch(self, done: threading.Event) -> None:
        try:
            self._result = ({q: self._admin.counts(q) for q in self._queues()}, None)
        except Exception as exc:
            self._result = ({}, exc)
        done.set()

    def _read(self) -> dict[str, QueueCounts]:
        with self._lock:  # one scrape reads; the others then find its result fresh
            if time.monotonic() - self._read_at < self._max_age:
                return self._counts
            if self._reader is None or not self._reader.is_alive():
                self._done = threading.Event()
                self._reader = threading.Thread(target=self._fetch, args=(self._done,),
                                                name="tinyq-queue-sizes", daemon=True)
                self._reader.start()
            if self._done.wait(self._timeout):
                counts, error = self._result
            else:  # still reading: this scrape goes on without the sizes
                counts, error = {}, TimeoutError(f"no answer within {self._timeout:g}s")
            if error is not None:  # a broker outage leaves the gauges out, not /metrics
                self._errors += 1
                logger.warning("Queue sizes not read for /metrics: %s", error)
            self._counts, self._read_at = counts, time.monotonic()
            return counts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        family = GaugeMetricFamily("tinyq_queue_messages", "Messages of a queue by state "
                                   "(ready, scheduled, leased, dead)", labels=("queue", "state"))
        for queue, counts in sorted(self._read().items()):
            for state in ("ready", "scheduled", "leased", "dead"):
                family.add_metric((queue, state), getattr(counts, state))
        yield family
        yield CounterMetricFamily("tinyq_queue_size_errors", "Scrapes whose queue sizes "
                                  "could not be read (the broker failed or was late)",
                                  value=self._errors)

    def close(self, timeout: float = 10.0) -> None:
        """Wait for a read still running (bounded by ``timeout``)."""
        reader = self._reader
        if reader is not None:
            reader.join(timeout)
