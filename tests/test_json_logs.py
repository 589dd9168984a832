"""``tinyq --log-format json``: a real worker whose every stderr line is one JSON object."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from tinyq_core._cli.jsonlog import JsonFormatter

from support.project import AppProject

APP = '''
from tinyq_core import Application

app = Application()  # the default SQLite file, in the project folder

@app.task()
def add(m, n):
    return m + n

@app.task(max_retries=0)
def boom():
    raise ValueError("boom goes the job")
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # the default SQLite file is relative to the working directory
    with AppProject(tmp_path, APP) as p:
        yield p


def test_every_stderr_line_of_a_json_worker_is_an_object_with_the_job_fields(
    project: AppProject,
) -> None:
    good = project.module.add.delay(2, 3)
    bad = project.module.boom.delay()
    proc = project.start("--log-format", "json", "-l", "info", "--burst", stderr_apart=True)
    assert proc.wait(timeout=60) == 0
    lines = project.errors(proc).splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert records and all(isinstance(r, dict) for r in records)
    for r in records:
        assert {"time", "level", "logger", "message", "process", "thread"} <= r.keys(), r
    finished = {r["job_id"]: r for r in records
                if r["message"].startswith("Finish run job")}
    assert finished[good.id]["outcome"] == "succeeded"
    assert finished[good.id]["task"] == "app.add" and finished[good.id]["queue"] == "default"
    assert finished[good.id]["attempt"] == 1
    assert 0 <= finished[good.id]["duration"] < 30
    assert finished[bad.id]["outcome"] == "failed"
    failure = [r for r in records if r["level"] == "ERROR" and r.get("job_id") == bad.id]
    assert len(failure) == 1, records
    assert "ValueError: boom goes the job" in failure[0]["traceback"]
    assert failure[0]["task"] == "app.boom"


def test_the_text_format_stays_the_default(project: AppProject) -> None:
    project.module.add.delay(1, 1)
    proc = project.start("-l", "info", "--burst", stderr_apart=True)
    assert proc.wait(timeout=60) == 0
    err = project.errors(proc)
    assert "Finish run job <Job: id: " in err and not err.lstrip().startswith("{")


def test_the_formatter_keeps_extras_and_survives_values_json_cannot_hold() -> None:
    record = logging.LogRecord("tinyq.worker", logging.WARNING, __file__, 1, "hello %s",
                               ("world",), None)
    record.job_id = "abc"
    record.odd = object()
    try:
        raise KeyError("k")
    except KeyError:
        record.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "hello world" and data["level"] == "WARNING"
    assert data["job_id"] == "abc" and data["odd"].startswith("<object object")
    assert "KeyError: 'k'" in data["traceback"] and "\n" not in JsonFormatter().format(record)
    assert data["time"].endswith("Z")
