"""tinyq_core.contrib.otel on memory://: the spans of a job's enqueue and runs, their
parents and links, attributes, recorded exceptions, and no span left open by a failed enqueue.
(From a producer process to a worker process through Redis: tests/test_otel_processes.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tinyq_core import Application, EnqueueError, Retry
from tinyq_core.contrib.otel import OpenTelemetryPlugin
from tinyq_core.plugin import Job
from tinyq_memory import FakeClock, MemoryBroker, drain

from support.waiting import wait_until


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_a_job_is_one_trace_the_run_a_child_of_the_send(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])
    tracer = provider.get_tracer("test")

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        with tracer.start_as_current_span("inside the task"):
            return a + b

    with tracer.start_as_current_span("request") as request:
        handle = add.delay(2, 3)
    assert drain(app) == 1 and handle.result(0) == 5
    [send] = spans(exporter, "send default")
    [process] = spans(exporter, "process default")
    [inside] = spans(exporter, "inside the task")
    assert send.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert inside.parent is not None and inside.parent.span_id == process.context.span_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "tinyq", "messaging.operation.name": "send",
        "messaging.operation.type": "send", "messaging.destination.name": "default",
        "messaging.message.id": handle.id, "tinyq.task.name": "add"}
    attributes = dict(process.attributes or {})
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.message.id"] == handle.id
    assert attributes["tinyq.job.attempt"] == 1 and attributes["tinyq.job.retries"] == 0
    assert attributes["tinyq.job.outcome"] == "succeeded"
    assert process.status.status_code is StatusCode.UNSET


def test_the_traceparent_header_travels_with_the_job(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])
    seen: dict[str, str] = {}

    @app.task()
    def look() -> None:
        from tinyq_core import current_job
        seen.update(current_job().headers)

    look.delay()
    drain(app)
    [send] = spans(exporter, "send default")
    assert seen["traceparent"].startswith(f"00-{send.context.trace_id:032x}-"
                                          f"{send.context.span_id:016x}-")


def test_with_link_a_run_starts_a_trace_of_its_own(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider, link=True)])

    @app.task()
    def noop() -> None:
        return None

    noop.delay()
    drain(app)
    [send] = spans(exporter, "send default")
    [process] = spans(exporter, "process default")
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    [link] = process.links
    assert (link.context.trace_id, link.context.span_id) == (
        send.context.trace_id, send.context.span_id)


def test_exceptions_are_recorded_and_retries_visible(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])

    @app.task(max_retries=1)
    def flaky() -> None:
        raise ValueError("not today")

    flaky.delay()
    drain(app)
    first, second = sorted(spans(exporter, "process default"), key=lambda s: s.start_time or 0)
    for span in (first, second):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: not today"
        [exception] = [e for e in span.events if e.name == "exception"]
        assert (exception.attributes or {})["exception.type"] == "ValueError"
    assert (first.attributes or {})["tinyq.job.outcome"] == "retried"
    assert [e.name for e in first.events][-1] == "tinyq.job.retried"
    assert (first.attributes or {})["tinyq.job.retries"] == 0
    assert (second.attributes or {})["tinyq.job.retries"] == 1
    assert (second.attributes or {})["tinyq.job.outcome"] == "failed"
    assert [e.name for e in second.events][-1] == "tinyq.job.dead_lettered"
    # both runs continue the one producer span
    [send] = spans(exporter, "send default")
    assert {first.parent.span_id, second.parent.span_id} == {send.context.span_id}  # type: ignore[union-attr]


def test_a_retry_request_is_an_outcome_too(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])
    runs: list[int] = []

    @app.task(max_retries=1)
    def again() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise Retry(delay=0)

    again.delay()
    drain(app)
    outcomes = [(s.attributes or {})["tinyq.job.outcome"]
                for s in sorted(spans(exporter, "process default"),
                                key=lambda s: s.start_time or 0)]
    assert outcomes == ["retried", "succeeded"]


def test_a_timeout_is_an_event_on_the_run(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])

    @app.task(timeout=1.0)  # as tests/test_hooks.py: the task is surely in its loop by then
    def spin() -> None:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pass

    spin.delay()
    app.worker(concurrency=1).run(burst=True)
    # The span ends when both the outcome and the task's end came, in either order.
    wait_until(lambda: spans(exporter, "process default"), 10, message="the process span")
    [span] = spans(exporter, "process default")
    names = [e.name for e in span.events]
    assert "tinyq.job.timed_out" in names and "tinyq.job.dead_lettered" in names
    assert (span.attributes or {})["tinyq.job.outcome"] == "failed"
    assert span.status.status_code is StatusCode.ERROR


def test_a_failed_enqueue_ends_its_span_as_an_error(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    plugin = OpenTelemetryPlugin(provider)
    app = Application(tinyq_broker, plugins=[plugin])

    @app.task()
    def noop() -> None:
        return None

    tinyq_broker.set_capacity(1)
    with pytest.raises(EnqueueError) as info:
        noop.map([(), ()])
    sent = spans(exporter, "send default")
    assert len(sent) == 2  # both ended: none left open
    assert sorted(s.status.status_code.name for s in sent) == ["ERROR", "UNSET"]
    assert not plugin._sending
    tinyq_broker.set_capacity(None)
    info.value.retry()  # the retry's after_enqueue finds no span to end: nothing breaks
    assert len(spans(exporter, "send default")) == 2
    assert drain(app) == 2


def test_a_job_that_never_ran_still_ends_its_trace(
    tinyq_broker: MemoryBroker, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """tinyq_job_expired and tinyq_job_cancelled(started=False), called as the worker will."""
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])
    with trace.get_tracer("t", tracer_provider=provider).start_as_current_span("req") as req:
        headers: dict[str, str] = {}
        from opentelemetry import propagate
        propagate.inject(headers)
    hooks = app.registry.hooks
    for hook, outcome in (("tinyq_job_expired", "expired"),
                          ("tinyq_job_cancelled", "cancelled")):
        job = Job(id=outcome, task_name="t", args=(), kwargs={}, queue="q", headers=headers)
        hooks.call(hook, job=job, started=False)
        [span] = spans(exporter, "process q")[-1:]
        assert (span.attributes or {})["tinyq.job.outcome"] == outcome
        assert span.parent is not None
        assert span.parent.span_id == req.get_span_context().span_id


def test_the_tracing_example_of_observability_md_runs() -> None:
    """Run in a process of its own: it sets the global tracer provider, once per process."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from support.environment import child_env

    text = (Path(__file__).resolve().parents[1] / "docs" / "observability.md").read_text()
    [block] = [b for b in re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
               if "OpenTelemetryPlugin()" in b]
    code = block.replace('"redis://localhost:6379/0"', '"memory://"') + (
        "\n@app.task(name='add')\ndef add(m, n):\n    return m + n\n\n"
        "from tinyq_memory import drain\nadd.delay(1, 2)\ndrain(app)\nprovider.shutdown()\n")
    done = subprocess.run([sys.executable, "-c", code], env=child_env({}), text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"name": "send default"' in done.stdout
    assert '"name": "process default"' in done.stdout


def test_the_module_exports_the_plugin() -> None:
    import tinyq_core.contrib.otel

    assert tinyq_core.contrib.otel.__all__ == ["OpenTelemetryPlugin"]


def test_a_run_after_a_worker_died_shows_its_attempt(
    tinyq_broker: MemoryBroker, tinyq_clock: FakeClock, provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    app = Application(tinyq_broker, plugins=[OpenTelemetryPlugin(provider)])

    @app.task()
    def job() -> str:
        return "ok"

    job.delay()
    tinyq_broker.reserve(["default"], 1, 0)  # a worker that took it, then died
    tinyq_clock.advance(tinyq_broker.visibility_timeout + 1)
    assert tinyq_broker.recover(["default"]) == 1
    drain(app)
    [span] = spans(exporter, "process default")
    assert (span.attributes or {})["tinyq.job.attempt"] == 2
    assert (span.attributes or {})["tinyq.job.outcome"] == "succeeded"
