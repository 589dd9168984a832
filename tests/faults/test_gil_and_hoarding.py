"""Jobs that hold the GIL past the visibility timeout, and long jobs hoarded by one worker
process of several: real worker processes on a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import math, os, re, time
import redis
from tinyq_core import Application

URL = os.environ["TINYQ_URL"]
app = Application(URL)
r = redis.Redis.from_url(URL.split("?")[0])
NS = os.environ["NS"]

def hog_size(seconds):
    """The n for which the regex below takes about ``seconds`` here: each "a" doubles it."""
    small = min(timed(20) for _ in range(3))
    return 20 + max(0, round(math.log2(seconds / max(small, 1e-4))))

def timed(n):
    start = time.perf_counter()
    re.match(r"(a+)+$", "a" * n + "b")
    return time.perf_counter() - start

@app.task(name="hog", max_retries=0)
def hog(seconds):
    n = hog_size(seconds)
    run = r.hincrby(f"{NS}:runs", "hog", 1)
    while run > 1 and not r.exists(f"{NS}:go"):  # the test says when (leases renewed meanwhile)
        time.sleep(0.01)
    # One C call that holds the GIL for seconds: no other thread of the process runs, the
    # lease-renewing housekeeper included.
    re.match(r"(a+)+$", "a" * n + "b")
    r.hincrby(f"{NS}:runs", "ended", 1)
    if run > 1:
        raise RuntimeError("already done: this job must not run twice")
    return "done"

@app.task(name="nap")
def nap(seconds):
    started = time.time()
    time.sleep(seconds)
    if seconds:
        r.rpush(f"{NS}:long", f"{os.getpid()} {started} {time.time()}")
    return seconds
'''

# Well beyond the lease (1 s) and its recovery (a quarter of it), even when the machine's
# load changes between the calibration and the run.
HOG_SECONDS = 2.5


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    yield p
    p.close()


def test_a_gil_hog_that_runs_twice_keeps_its_success_and_says_so(project: AppProject) -> None:
    runs = f"{project.ns}:runs"
    first = project.worker("-w", "1")
    handle = project.module.hog.delay(HOG_SECONDS)
    wait_until(lambda: project.redis.hget(runs, "hog"), message="the first run")
    # The second worker recovers the lease the first one cannot renew while it hogs the GIL,
    # and runs the job again.
    second = project.worker("-w", "1")
    wait_until(lambda: int(project.redis.hget(runs, "hog") or 0) >= 2, timeout=15,
               message="the second run")
    assert handle.result(timeout=15) == "done"  # the first run's success
    # Now the second run hogs the GIL in turn: the first worker, idle, recovers its lease and
    # finds a crash loop (max_retries=0), and the second run's end raises.
    project.redis.set(f"{project.ns}:go", 1)
    broker = project.app.broker
    wait_until(lambda: int(project.redis.hget(runs, "ended") or 0) >= 2
               and broker.size("default") == 0 and broker.count_leased("default") == 0,
               timeout=30, message="the second run to end and the queue to settle")
    assert handle.status() == "succeeded"
    assert handle.result(timeout=0) == "done"
    logs = project.stop(first) + project.stop(second)
    assert "crash loop" in logs, logs
    assert "Worker lost the lease of job " + handle.id in logs, logs


LONG = 1.5  # seconds each long job runs


def test_a_process_with_a_free_slot_is_not_left_idle_by_one_hoarding_long_jobs(
    project: AppProject,
) -> None:
    """Two processes of two slots each, started on 200 short jobs followed by 4 long ones:
    after the short jobs the deep prefetch of one process must not keep long jobs unstarted
    while the other process has nothing to run. One round of four jobs: about LONG."""
    nap = project.module.nap
    nap.map([(0.0,)] * 200 + [(LONG,)] * 4)
    supervisor = project.worker("-p", "2", "-w", "2")
    key = f"{project.ns}:long"
    wait_until(lambda: project.redis.llen(key) == 4, timeout=30, message="the long jobs")
    runs = [line.decode().split() for line in project.redis.lrange(key, 0, -1)]
    span = max(float(end) for _, _, end in runs) - min(float(start) for _, start, _ in runs)
    by_process = sorted(sum(1 for pid, _, _ in runs if pid == p) for p in {r[0] for r in runs})
    project.stop(supervisor)
    print(f"long jobs by process: {by_process}, first start to last end: {span:.2f} s")
    assert by_process == [2, 2], (by_process, span)
    assert span < LONG + 1.0, (by_process, span)  # hoarded: 2 * LONG
