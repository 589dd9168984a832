"""The trace of a job from a producer process to a ``tinyq`` worker process through Redis:
each process records its spans with an OpenTelemetry in-memory exporter; the worker writes
its spans to a file when it exits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_server import RedisServer
from support.project import AppProject

APP = '''
import atexit
import json
import os

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tinyq_core import Application
from tinyq_core.contrib.otel import OpenTelemetryPlugin

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))


def write_spans():
    path = os.environ.get("SPANS_FILE")  # set for the worker only
    if path:
        with open(path, "w") as f:
            json.dump([json.loads(span.to_json()) for span in exporter.get_finished_spans()], f)


atexit.register(write_spans)
app = Application(os.environ.get("TINYQ_URL"),
                  plugins=[OpenTelemetryPlugin(provider, link=os.environ.get("LINK") == "1")])


@app.task(name="add")
def add(m, n):
    with provider.get_tracer("app").start_as_current_span("adding"):
        return m + n
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    with AppProject(tmp_path, APP, url=redis_server.url) as p:
        yield p


def worker_spans(project: AppProject, link: bool) -> list[dict[str, Any]]:
    """Run a burst worker to its end; the spans it wrote."""
    path = project.path / "spans.json"
    proc = project.start("-l", "info", "--burst",
                         env={"SPANS_FILE": str(path), "LINK": "1" if link else "0"})
    assert proc.wait(timeout=60) == 0, project.output(proc)
    spans: list[dict[str, Any]] = json.loads(path.read_text())
    return spans


def hex_id(value: int, width: int) -> str:
    return f"0x{value:0{width}x}"


@pytest.mark.parametrize("link", [False, True], ids=["child", "link"])
def test_one_trace_from_the_producer_process_to_the_worker_process(
    project: AppProject, link: bool
) -> None:
    handle = project.module.add.delay(2, 3)
    [send] = project.module.exporter.get_finished_spans()
    assert send.name == "send default"
    trace_id = hex_id(send.context.trace_id, 32)
    span_id = hex_id(send.context.span_id, 16)
    spans = worker_spans(project, link)
    assert handle.result(10) == 5
    [process] = [s for s in spans if s["name"] == "process default"]
    [adding] = [s for s in spans if s["name"] == "adding"]
    assert process["kind"] == "SpanKind.CONSUMER"
    assert process["attributes"]["messaging.message.id"] == handle.id
    assert process["attributes"]["messaging.system"] == "tinyq"
    assert process["attributes"]["tinyq.job.outcome"] == "succeeded"
    assert [(k["context"]["trace_id"], k["context"]["span_id"]) for k in process["links"]] \
        == [(trace_id, span_id)]
    if link:
        assert process["parent_id"] is None
        assert process["context"]["trace_id"] != trace_id
    else:
        assert process["context"]["trace_id"] == trace_id
        assert process["parent_id"] == span_id
    # the task's own span continues the process span, in its trace
    assert adding["parent_id"] == process["context"]["span_id"]
    assert adding["context"]["trace_id"] == process["context"]["trace_id"]
