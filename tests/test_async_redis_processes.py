"""Async tasks on the event loop of real ``tinyq`` worker processes on a throwaway Redis:
a thousand concurrent sleeps in one process, and a SIGKILL mid-drain that loses nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import asyncio, os
from tinyq_core import Application

app = Application(os.environ["TINYQ_URL"])

@app.task(name="nap")
async def nap(i, seconds=1.0):
    await asyncio.sleep(seconds)
    return i
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    yield p
    p.close()


def test_a_thousand_one_second_jobs_finish_in_seconds_in_one_process(
        project: AppProject) -> None:
    handles = project.app.tasks["nap"].map([(i,) for i in range(1000)])
    began = time.monotonic()
    proc = project.worker("-w", "1", "--async-concurrency", "1000", "--burst")
    assert proc.wait(timeout=60) == 0, project.output(proc)
    took = time.monotonic() - began  # the process's start-up included
    assert [h.result(timeout=5) for h in handles] == list(range(1000))
    assert took < 5, f"took {took:.1f}s"  # one at a time: 1,000 s


def test_sigkill_mid_drain_of_async_jobs_loses_nothing(project: AppProject) -> None:
    nap = project.app.tasks["nap"]
    handles = nap.map([(i, 0.3) for i in range(600)])
    a = project.worker("-w", "1", "--async-concurrency", "50")
    wait_until(lambda: sum(h.status() == "succeeded" for h in handles[:100]) >= 50, 30,
               message="the first worker to finish some jobs")
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    b = project.worker("-w", "1", "--async-concurrency", "50", "--burst")
    assert b.wait(timeout=60) == 0, project.output(b)
    assert [h.result(timeout=10) for h in handles] == list(range(600))
    assert project.app.broker.size("default") == 0
