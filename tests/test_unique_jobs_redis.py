"""Unique jobs on a real redis-server with real processes: 8 producer processes racing for
one lock, a worker process running the job while producers ask again, and ``unique_for`` on
the real clock."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os, time
import redis
from tinyq_core import Application

URL = os.environ["TINYQ_URL"]
app = Application(URL)
r = redis.Redis.from_url(URL.split("?")[0])
NS = os.environ["NS"]

@app.task(name="race", unique=True)
def race(what, n=0):
    return what

@app.task(name="gated", unique=True)
def gated(n):
    r.incr(f"{NS}:started")
    deadline = time.time() + 30
    while not r.exists(f"{NS}:go") and time.time() < deadline:
        time.sleep(0.02)
    return n

@app.task(name="kept", unique=True, unique_for=3)
def kept(n):
    return time.time()  # when it finished: the lock is kept 3 s from a moment after

@app.task(name="broken", unique=True)
def broken():
    raise RuntimeError("always")
'''

PRODUCER = '''
import sys, time
from app import app
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
print(app.tasks["race"].delay("same", n=1).id, flush=True)
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    p.write("produce.py", PRODUCER)
    yield p
    p.close()


def test_eight_producer_processes_enqueue_one_job(project: AppProject) -> None:
    start = time.time() + 3  # the imports done first, so the calls meet
    procs = [subprocess.Popen([sys.executable, "produce.py", f"{start:.3f}"], cwd=project.path,
                              env=project.env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for _ in range(8)]
    outs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [err for _, err in outs]
    ids = {out.strip() for out, _ in outs}
    assert len(ids) == 1, ids
    broker = project.app.broker
    assert broker.size("default") == 1
    assert broker.status(ids.pop(), "default") == "queued"


def test_the_running_job_answers_until_it_finished(project: AppProject) -> None:
    gated = project.app.tasks["gated"]
    worker = project.worker()
    running = gated.delay(1)
    wait_until(lambda: project.redis.get(f"{project.ns}:started") == b"1", 30,
               message="the job to start")
    assert running.status() == "started"
    assert gated.delay(1).id == running.id
    project.redis.set(f"{project.ns}:go", 1)
    assert running.result(timeout=30) == 1
    after = gated.delay(1)  # unique_for 0: the lock freed with the ack
    assert after.id != running.id
    assert after.result(timeout=30) == 1
    # The finished jobs' lock keys are deleted, not left to their 30-day ttl.
    locks = f"{{{project.ns}:default}}:unique:*"
    wait_until(lambda: project.redis.keys(locks) == [], 10, message="the locks deleted")
    project.stop(worker)
    assert worker.returncode == 0, project.output(worker)


def test_unique_for_on_the_real_clock_and_a_dead_letter(project: AppProject) -> None:
    kept, broken = project.app.tasks["kept"], project.app.tasks["broken"]
    worker = project.worker()
    first = kept.delay(5)
    finished = first.result(timeout=30)
    again = kept.delay(5)
    if time.time() - finished < 2.5:  # the lock's 3 s are not over yet (a slow machine: skip)
        assert again.id == first.id
    wait_until(lambda: kept.delay(5).id != first.id, 10, interval=0.1,
               message="the kept lock to end")
    assert time.time() - finished > 2.95  # 3 s, less the clocks' granularity

    failing = broken.delay()
    with pytest.raises(Exception, match="always"):
        failing.result(timeout=30)
    assert broken.delay().id != failing.id  # dead-lettered: the lock is free
    project.stop(worker)
