"""One outcome vocabulary (tinyq_core._outcomes) for the worker's log lines, the metrics and
the traces; "cancelled" and "expired" from the hooks tinyq_job_cancelled / tinyq_job_expired
(called directly here, as the worker calls them), and the worker's own log lines."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import CollectorRegistry

from tinyq_core import Application
from tinyq_core._cli.jsonlog import JsonFormatter
from tinyq_core._errors import JobTimeout
from tinyq_core._outcomes import OUTCOMES
from tinyq_core._worker.policy import AckJob, DeadLetterJob, RetryJob
from tinyq_core._worker.runner import outcome_of
from tinyq_core.contrib.prometheus import PrometheusMetrics
from tinyq_core.plugin import Delivery, Job, Message
from tinyq_memory import FakeClock, MemoryBroker, drain

JOB = Job(id="j1", task_name="report", args=(), kwargs={}, queue="mail")


def test_the_words_of_the_runners_log_lines_are_in_the_vocabulary() -> None:
    delivery = Delivery(Message("j1", "mail", b""), attempts=1)
    error = ValueError("x")
    words = {outcome_of(AckJob(delivery), None),
             outcome_of(RetryJob(delivery, b"", 1.0), error),
             outcome_of(DeadLetterJob(delivery, None, "r"), error),
             outcome_of(RetryJob(delivery, b"", 1.0), JobTimeout())}
    assert words == {"succeeded", "retried", "failed", "timed_out"}
    assert words <= set(OUTCOMES)
    assert {"cancelled", "expired", "dead_lettered"} <= set(OUTCOMES)


def test_metrics_count_cancelled_and_expired_jobs() -> None:
    registry = CollectorRegistry()
    app = Application(MemoryBroker(), plugins=[PrometheusMetrics(registry)])
    hooks = app.registry.hooks
    hooks.call("tinyq_job_cancelled", job=JOB, started=True)
    hooks.call("tinyq_job_cancelled", job=JOB, started=False)
    hooks.call("tinyq_job_expired", job=JOB)

    def count(outcome: str) -> float | None:
        return registry.get_sample_value(
            "tinyq_jobs_total", {"task": "report", "queue": "mail", "outcome": outcome})

    assert count("cancelled") == 2 and count("expired") == 1
    for metric in registry.collect():
        for sample in metric.samples:
            if "outcome" in sample.labels:
                assert sample.labels["outcome"] in OUTCOMES


def test_the_worker_logs_one_line_with_its_outcome_for_cancelled_and_expired_jobs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    app = Application(MemoryBroker(clock=clock))

    @app.task(name="report", queue="mail")
    def report() -> None: ...

    stale = report.apply_async(expires=5)
    gone = report.delay()
    clock.advance(10)
    caplog.set_level(logging.INFO, logger="tinyq.worker")
    assert app.cancel(gone.id) == "cancelled"  # waiting: removed, it never reaches a worker
    drain(app)
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    ends = [(line["outcome"], line["job_id"]) for line in lines if "outcome" in line]
    assert ends == [("expired", stale.id)]  # once: the worker's line, no second one
    assert stale.status() == "expired" and gone.status() == "cancelled"
