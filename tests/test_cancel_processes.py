"""Cancelling across processes on Redis (issue 15 item 2): a real worker process runs a job
that loops checking ``current_job().cancelled``; this process cancels it; the worker stops it
within about a second, its outcome is "cancelled" and it is not retried (max_retries set).
Also: a job whose worker was SIGKILLed after its cancel is not run on by the next worker; and
expiry for real (item 3): a short expiry, a worker started late."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyq_core import JobCancelled, JobExpired

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.process]

APP = '''
import os, time
import redis
from tinyq_core import Application, current_job

URL = os.environ["TINYQ_URL"]
app = Application(URL)
r = redis.Redis.from_url(URL.split("?")[0])
NS = os.environ["NS"]

@app.task(name="loop", max_retries=3, retry_backoff=0.1)
def loop(tag):
    r.rpush(f"{NS}:started:{tag}", time.time())
    job = current_job()
    while not job.cancelled:
        time.sleep(0.02)
    r.rpush(f"{NS}:stopped:{tag}", time.time())
    job.check_cancelled()

@app.task(name="stubborn", max_retries=3)
def stubborn(tag):
    r.rpush(f"{NS}:started:{tag}", time.time())
    while True:
        time.sleep(0.02)
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    # A lease of 2 s: a fresh server loads the settle script on the worker's first report
    # (NOSCRIPT), after a blocking read of up to 1 s, while that delivery is not renewed.
    p = AppProject(tmp_path, APP, url=redis_server.url, visibility_timeout=2)
    yield p
    p.close()


def test_a_running_job_in_another_process_is_cancelled_and_not_retried(
    project: AppProject,
) -> None:
    worker = project.worker("-w", "2")
    h = project.app.tasks["loop"].delay("a")
    started = f"{project.ns}:started:a"
    wait_until(lambda: project.redis.llen(started) == 1, 30, message="the job to start")
    assert h.status() == "started"
    cancelled_at = time.time()
    assert h.cancel() == "cancelling"
    with pytest.raises(JobCancelled):
        h.result(timeout=10)
    stopped_at = float(project.redis.lindex(f"{project.ns}:stopped:a", 0))  # type: ignore[arg-type]
    assert stopped_at - cancelled_at < 2.0  # the worker polls once a second
    assert h.status() == "cancelled"
    time.sleep(1.5)  # a retry (backoff 0.1 s) would have started by now
    assert project.redis.llen(started) == 1
    assert worker.poll() is None
    out = project.stop(worker)
    assert worker.returncode == 0, out
    assert "was cancelled: asked to stop" in out


def test_a_stubborn_job_is_interrupted_after_its_grace(project: AppProject) -> None:
    worker = project.worker("-w", "1")
    h = project.app.tasks["stubborn"].delay("b")
    started = f"{project.ns}:started:b"
    wait_until(lambda: project.redis.llen(started) == 1, 30, message="the job to start")
    assert h.cancel(grace=0.5) == "cancelling"
    with pytest.raises(JobCancelled, match="interrupted after its grace"):
        h.result(timeout=10)
    time.sleep(1.0)
    out = project.output(worker)
    assert project.redis.llen(started) == 1, out  # not retried
    out = project.stop(worker)
    assert worker.returncode == 0, out


def test_a_cancelled_job_redelivered_after_its_worker_died_is_cancelled_again(
    project: AppProject,
) -> None:
    first = project.worker("-w", "1")
    h = project.app.tasks["stubborn"].delay("c")  # never looks at the flag
    started = f"{project.ns}:started:c"
    wait_until(lambda: project.redis.llen(started) == 1, 30, message="the job to start")
    first.send_signal(signal.SIGKILL)  # before its watcher saw the request
    first.wait(10)
    assert h.cancel(grace=0.2) == "cancelling"  # still leased by the dead worker
    second = project.worker("-w", "1")
    with pytest.raises(JobCancelled):
        h.result(timeout=20)
    assert h.status() == "cancelled"
    out = project.stop(second)
    assert second.returncode == 0, out


def test_a_job_expires_before_a_late_worker_starts(project: AppProject) -> None:
    loop = project.app.tasks["loop"]
    stale = loop.apply_async(("stale",), expires=0.5)
    time.sleep(1.0)
    worker = project.worker("-w", "1")
    with pytest.raises(JobExpired, match="not started by its expiry time"):
        stale.result(timeout=20)
    assert stale.status() == "expired"
    assert project.redis.llen(f"{project.ns}:started:stale") == 0  # never ran
    out = project.stop(worker)
    assert worker.returncode == 0, out
    assert out.count("expired") == 1 and stale.id in out  # logged once
