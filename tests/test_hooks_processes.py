"""Lifecycle hooks across real ``tinyq`` worker processes on Redis: a worker SIGKILLed in the
middle of a job, and the next worker's ``tinyq_job_recovered``."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import json
import os
import threading
import time

import redis

from tinyq_core import Application, current_job
from tinyq_core.plugin import hookimpl

r = redis.Redis.from_url(os.environ["TINYQ_URL"].split("?")[0])
NS = os.environ["NS"]


class FileRecorder:
    """Every hook this process sees, one JSON line each, written at once (a SIGKILL keeps
    what was written)."""

    lock = threading.Lock()

    def note(self, hook, job, **more):
        line = json.dumps({"pid": os.getpid(), "hook": hook, "job": job.id, **more})
        with self.lock, open(os.environ["HOOKS_FILE"], "a") as f:
            f.write(line + "\\n")

    @hookimpl
    def tinyq_job_received(self, job, attempt):
        self.note("received", job, attempt=attempt)

    @hookimpl
    def tinyq_job_recovered(self, job, attempt):
        self.note("recovered", job, attempt=attempt)

    @hookimpl
    def tinyq_job_succeeded(self, job, value):
        self.note("succeeded", job, value=value)


app = Application(os.environ.get("TINYQ_URL"), plugins=[FileRecorder()])


@app.task(name="slow")
def slow():
    attempt = current_job().attempt
    r.rpush(f"{NS}:started", attempt)
    if attempt == 1:
        time.sleep(60)  # killed here
    return attempt
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    env = {"HOOKS_FILE": str(tmp_path / "hooks.jsonl")}
    with AppProject(tmp_path, APP, url=redis_server.url, env=env) as p:
        yield p


def hooks(project: AppProject) -> list[dict[str, Any]]:
    path = project.path / "hooks.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_job_of_a_sigkilled_worker_is_recovered_by_the_next_one(project: AppProject) -> None:
    handle = project.app.tasks["slow"].delay()
    first = project.worker("-w", "1")
    wait_until(lambda: project.redis.llen(f"{project.ns}:started") == 1, 30,
               message="the job to start")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    second = project.worker("-w", "1")
    assert handle.result(timeout=30) == 2
    project.stop(second)
    seen = [(h["pid"], h["hook"], h.get("attempt")) for h in hooks(project)
            if h["job"] == handle.id]
    assert seen == [(first.pid, "received", 1), (second.pid, "received", 2),
                    (second.pid, "recovered", 2), (second.pid, "succeeded", None)]
