"""Rate and concurrency limits on a real redis-server with real worker processes (issue 16's
tests): 20/s across two worker processes, ``concurrency=3`` under ``-p 2 -w 8`` sampled inside
the task, and a SIGKILLed worker's slot freed by its lease (kept while it lived)."""

from __future__ import annotations

import os
import signal
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

@app.task(name="tick", rate_limit="20/s")
def tick(n):
    r.rpush(f"{NS}:ticks", repr(time.time()))

@app.task(name="busy", concurrency=3)
def busy(n):
    r.rpush(f"{NS}:running", r.incr(f"{NS}:now"))
    time.sleep(0.2)
    r.decr(f"{NS}:now")
    r.rpush(f"{NS}:done", n)

@app.task(name="hold", concurrency=1)
def hold():
    r.set(f"{NS}:held", os.getpid())
    while not r.exists(f"{NS}:release"):
        time.sleep(0.05)
    return "done"
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    yield p
    p.close()


def test_twenty_a_second_across_two_worker_processes(project: AppProject) -> None:
    project.app.tasks["tick"].map(range(400))  # 20 s of slots: the limit, not the queue, ends
    workers = [project.worker("-w", "4"), project.worker("-w", "4")]
    wait_until(lambda: project.redis.llen(f"{project.ns}:ticks") > 0, 30,
               message="the first tick")
    first = float(project.redis.lindex(f"{project.ns}:ticks", 0) or 0)
    time.sleep(max(0.0, first + 10.5 - time.time()))
    for worker in workers:
        project.stop(worker)
    ticks = [float(t) for t in project.redis.lrange(f"{project.ns}:ticks", 0, -1)]
    in_ten_seconds = [t for t in ticks if first <= t < first + 10]
    assert 190 <= len(in_ten_seconds) <= 210, len(in_ten_seconds)
    outputs = [project.output(worker) for worker in workers]
    assert all("Got a job" in output for output in outputs), outputs  # both worked


def test_concurrency_three_under_two_processes_of_eight_threads(project: AppProject) -> None:
    project.app.tasks["busy"].map(range(30))
    worker = project.worker("-p", "2", "-w", "8")
    wait_until(lambda: project.redis.llen(f"{project.ns}:done") == 30, 90,
               message="30 jobs done")
    project.stop(worker)
    samples = [int(n) for n in project.redis.lrange(f"{project.ns}:running", 0, -1)]
    assert len(samples) == 30  # each ran once
    assert max(samples) == 3, samples  # never more than 3 at once, and 3 were used
    assert sorted(int(n) for n in project.redis.lrange(f"{project.ns}:done", 0, -1)) == list(
        range(30))


def test_a_killed_workers_slot_frees_after_its_lease(project: AppProject) -> None:
    app = project.app
    broker = app.broker
    handle = app.tasks["hold"].delay()
    worker = project.worker()
    wait_until(lambda: project.redis.get(f"{project.ns}:held") is not None, 30,
               message="the job to start")
    pid = int(project.redis.get(f"{project.ns}:held") or 0)
    # Held past three leases (visibility_timeout=1): the worker renews its slot.
    time.sleep(3)
    assert not broker.acquire_slot("default", "hold", 1, "outsider", 5)
    os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    killed = time.monotonic()
    wait_until(lambda: broker.acquire_slot("default", "hold", 1, "outsider", 5), 10,
               interval=0.05, message="the dead worker's slot to free")
    assert time.monotonic() - killed < 3  # its lease (1 s), not some later cleanup
    # The job itself comes back (its message lease) and runs once the outsider lets go.
    project.redis.set(f"{project.ns}:release", 1)
    second = project.worker()
    time.sleep(1.5)
    assert handle.status() != "succeeded"  # the outsider holds the only slot
    broker.release_slot("default", "hold", "outsider")
    assert handle.result(timeout=30) == "done"
    project.stop(second)


FAIR_APP = APP + '''
@app.task(name="tenant", rate_limit="1/s", rate_key=lambda tenant, n: tenant)
def tenant(tenant, n):
    r.rpush(f"{NS}:tenant", f"{tenant} {n} {time.time()!r}")
'''


def test_a_burst_of_one_tenant_does_not_delay_another(tmp_path: Path,
                                                      redis_server: RedisServer) -> None:
    with AppProject(tmp_path, FAIR_APP, url=redis_server.url) as project:
        project.app.tasks["tenant"].map([("a", n) for n in range(10)] + [("b", 0)])
        worker = project.worker("-w", "4")
        key = f"{project.ns}:tenant"
        wait_until(lambda: project.redis.llen(key) >= 3, 30, message="a, b and a again")
        project.stop(worker)
        runs = [line.decode().split() for line in project.redis.lrange(key, 0, -1)]
        first = {who: float(at) for who, _, at in reversed(runs)}
        assert first["b"] - first["a"] < 1.0  # b waited less than one of a's intervals
        a_starts = sorted(float(at) for who, _, at in runs if who == "a")
        assert a_starts[1] - a_starts[0] > 0.95  # while a's own jobs keep to 1/s
