"""tinyq-redis with real worker processes and a real redis-server: kills, restarts, crash loops,
the CLI hello world, delayed jobs and unreachable servers."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tinyq_core import Application, BrokerUnavailable

from readme_hello import run_readme_hello_world
from redis_server import RedisServer, free_port
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os, signal, time
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from tinyq_core import Application

URL = os.environ["TINYQ_URL"]
app = Application(URL)
# The jobs' own bookkeeping rides out a Redis restart, so that every job can finish.
r = redis.Redis.from_url(URL.split("?")[0], retry=Retry(ExponentialBackoff(cap=1), 30),
                         retry_on_error=[redis.ConnectionError])
NS = os.environ["NS"]

@app.task(name="record")
def record(i, seconds=0.0):
    r.rpush(f"{NS}:started:{i}", time.time())
    time.sleep(seconds)
    r.hincrby(f"{NS}:runs", str(i), 1)
    return i

@app.task(name="suicide", max_retries=1)
def suicide():
    r.incr(f"{NS}:suicides")
    os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    yield p
    p.close()


def runs(p: AppProject) -> dict[int, int]:
    """How many times each ``record`` job (by its number) ran to the end."""
    return {int(k): int(v) for k, v in p.redis.hgetall(f"{p.ns}:runs").items()}


def test_sigkill_mid_batch_loses_no_job(project: AppProject) -> None:
    record = project.app.tasks["record"]
    handles = record.map([(i, 0.02) for i in range(300)])
    a = project.worker("-w", "4")
    b = project.worker("-w", "4")
    wait_until(lambda: len(runs(project)) >= 60, 30, message="60 jobs to run")
    a.send_signal(signal.SIGKILL)
    wait_until(lambda: len(runs(project)) == 300, 60, message="every job to run")
    assert b.poll() is None
    assert [h.result(timeout=10) for h in handles] == list(range(300))
    twice = [i for i, n in runs(project).items() if n > 1]
    # Only what the killed worker held: its 4 slots and its prefetch (up to 2 * 4).
    assert len(twice) <= 4 + 2 * 4
    out = project.stop(b)
    assert b.returncode == 0, out
    assert project.app.broker.size("default") == 0


def test_killed_workers_job_runs_again_within_the_visibility_timeout(project: AppProject) -> None:
    record = project.app.tasks["record"]
    a = project.worker("-w", "1")
    h = record.delay("long", 3.0)
    key = f"{project.ns}:started:long"
    wait_until(lambda: project.redis.llen(key) == 1, 20, message="the job to start")
    b = project.worker("-w", "1")  # idle, waiting for work
    wait_until(lambda: "Starting TinyQ worker" in project.output(b), 20,
               message="the second worker to start")
    killed_at = time.time()
    a.send_signal(signal.SIGKILL)
    wait_until(lambda: project.redis.llen(key) == 2, 10, message="the job to start again")
    restarted_at = float(project.redis.lindex(key, 1))  # type: ignore[arg-type]
    assert restarted_at - killed_at < 1.0 + 1.0  # visibility_timeout (1 s) plus one second
    assert h.result(timeout=10) == "long"
    assert b.poll() is None


def test_a_job_that_kills_its_worker_ends_in_the_dead_letters(project: AppProject) -> None:
    h = project.app.tasks["suicide"].delay()
    deadline = time.monotonic() + 60
    while not project.app.broker.dead_letters("default"):
        assert time.monotonic() < deadline, "never dead-lettered"
        proc = project.worker("-w", "1")
        try:
            proc.wait(timeout=5)  # dies in its job, or dead-letters it and idles
        except subprocess.TimeoutExpired:
            project.stop(proc)
    [dead] = project.app.broker.dead_letters("default")
    assert "crash loop" in dead.reason
    # max_retries=1: two deliveries may die; the third is refused... after the rule's limit.
    assert int(project.redis.get(f"{project.ns}:suicides") or 0) == 3
    assert h.status() == "failed"


def test_redis_restart_under_a_running_worker(tmp_path: Path) -> None:
    server = RedisServer(appendonly=True).start()
    try:
        project = AppProject(tmp_path, APP, url=server.url)
        try:
            record = project.app.tasks["record"]
            record.map([(i, 0.01) for i in range(200)])
            worker = project.worker("-w", "4")
            wait_until(lambda: len(runs(project)) >= 20, 30, message="20 jobs to run")
            server.stop(kill=True)
            time.sleep(2)
            assert worker.poll() is None
            server.start()
            project.redis = redis.Redis.from_url(server.url)
            wait_until(lambda: len(runs(project)) == 200, 60, message="every job to run")
            assert worker.poll() is None
            out = project.stop(worker)
            assert worker.returncode == 0, out
            assert "Broker is reachable again" in out
            assert out.count("Broker error") <= 3  # logged once per outage, per thread
            assert "Traceback" not in out
        finally:
            project.close()
    finally:
        server.close()


def test_hello_world_through_the_cli(tmp_path: Path, redis_server: RedisServer) -> None:
    """The README's app.py exactly, on the test's own Redis (-u), 30 jobs, Ctrl+C."""
    run_readme_hello_world(tmp_path, f"{redis_server.url}?prefix=hello{uuid.uuid4().hex[:6]}")


def test_delayed_job_runs_on_time_on_an_idle_worker(project: AppProject) -> None:
    record = project.app.tasks["record"]
    record.apply_async(args=("far",), countdown=3600)  # the mover sleeps for this one
    worker = project.worker("-w", "2")
    # Up and idle once it ran a job: its mover is asleep for the far job.
    assert record.delay("ready").result(timeout=20) == "ready"
    lateness = []
    for n in range(3):
        due = time.time() + 0.4
        record.apply_async(args=(f"soon{n}",), eta=due)
        key = f"{project.ns}:started:soon{n}"
        wait_until(lambda key=key: project.redis.llen(key) == 1, 10, message="the delayed job")
        lateness.append(float(project.redis.lindex(key, 0)) - due)  # type: ignore[arg-type]
    assert all(late >= -0.01 for late in lateness), lateness  # never early
    # The mover is woken for an earlier job (a fixed 1 s tick would be up to 1 s late).
    assert max(lateness) < 0.5, lateness
    assert worker.poll() is None


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    app = Application(f"redis://:s3cret@127.0.0.1:{port}/0")

    @app.task()
    def f() -> None:
        return None

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        f.delay()
    assert time.monotonic() - started < 5  # a short, bounded retry
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret" not in str(info.value)
    project = AppProject(tmp_path, "from tinyq_core import Application\napp = Application()\n")
    out = project.run("-u", f"redis://:s3cret@127.0.0.1:{port}/0", script=True)
    assert out.returncode == 1
    assert "tinyq: error: cannot reach the broker at redis://:***@127.0.0.1" in out.stderr
    assert "s3cret" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
