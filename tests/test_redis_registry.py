"""The worker registry with real worker processes on a real redis-server: a worker shows its
running job and then its count, a SIGKILLed one disappears after its TTL, a warm-stopping one
says so while its job finishes and is gone after."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tinyq_core import Application
from tinyq_core.plugin import WorkerInfo

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os, time
from tinyq_core import Application

app = Application(os.environ["TINYQ_URL"])

@app.task(name="nap")
def nap(seconds):
    time.sleep(seconds)
    return seconds
'''

# A worker with a short heartbeat: the CLI has no flag for it (yet).
RUN_WORKER = '''
import sys
from app import app

worker = app.worker(concurrency=2, heartbeat_interval=float(sys.argv[1]))
worker.install_signal_handlers()
sys.exit(worker.run())
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    p.write("run_worker.py", RUN_WORKER)
    yield p
    p.close()


def start_worker(p: AppProject, heartbeat_interval: float) -> subprocess.Popen[str]:
    log = open(p.path / f"worker{len(p.procs)}.log", "w")
    proc = subprocess.Popen([sys.executable, "run_worker.py", str(heartbeat_interval)],
                            cwd=p.path, env=p.env, text=True, stdout=log, stderr=log)
    log.close()
    p.procs.append(proc)  # killed by p.close()
    return proc


def of(p: AppProject, proc: subprocess.Popen[str]) -> list[WorkerInfo]:
    return [w for w in p.app.workers() if w.pid == proc.pid]


def test_a_worker_shows_its_job_then_counts_it(project: AppProject) -> None:
    proc = start_worker(project, 0.3)
    handle = project.app.tasks["nap"].delay(2.0)
    wait_until(lambda: [j.id for w in of(project, proc) for j in w.jobs] == [handle.id],
               20, message="the worker's record with its job")
    [info] = of(project, proc)
    assert (info.queues, info.concurrency, info.state, info.processed) == (
        ("default",), 2, "running", 0)
    assert info.jobs[0].task == "nap" and info.jobs[0].started_at <= time.time()
    assert handle.result(timeout=20) == 2.0
    wait_until(lambda: [(w.processed, w.jobs) for w in of(project, proc)] == [(1, ())],
               10, message="processed=1 and no job")


def test_a_killed_worker_disappears_after_its_ttl(project: AppProject) -> None:
    proc = start_worker(project, 0.3)
    wait_until(lambda: of(project, proc), 20, message="the worker's first heartbeat")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    assert len(of(project, proc)) == 1  # nobody told the registry
    wait_until(lambda: not of(project, proc), 10, message="the record to expire")
    assert time.monotonic() - killed < 0.9 + 2  # its ttl is 3 x 0.3 s from the last beat
    assert project.redis.zcard(f"{{{project.ns}}}:workers") == 0  # index cleaned too


def test_a_warm_stopping_worker_says_so_then_is_gone(project: AppProject) -> None:
    proc = start_worker(project, 60)  # a beat at start, the next one a minute later
    handle = project.app.tasks["nap"].delay(3.0)
    wait_until(lambda: handle.status() == "started", 20, message="the job to start")
    assert [w.jobs for w in of(project, proc)] == [()]  # the first beat, before the job
    proc.send_signal(signal.SIGINT)
    # At once, not at the next beat: the job is still running.
    wait_until(lambda: [w.state for w in of(project, proc)] == ["stopping"], 2,
               message='state "stopping"')
    assert [j.id for w in of(project, proc) for j in w.jobs] == [handle.id]
    assert proc.wait(timeout=20) == 0, project.output(proc)
    assert handle.result(timeout=0) == 3.0
    assert of(project, proc) == []


def test_a_tinyq_cli_worker_is_listed_until_it_stops(project: AppProject) -> None:
    proc = project.worker("-w", "3", "-q", "default", "-q", "low")
    wait_until(lambda: of(project, proc), 20, message="the worker's first heartbeat")
    [info] = of(project, proc)
    assert (info.queues, info.concurrency, info.state) == (("default", "low"), 3, "running")
    out = project.stop(proc)
    assert proc.returncode == 0, out
    assert of(project, proc) == []


def _calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command so far (those run inside scripts counted too)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def test_known_queues_cost_one_sadd_per_queue_and_process(redis_server: RedisServer) -> None:
    prefix = uuid.uuid4().hex[:8]
    app = Application(f"{redis_server.url}?prefix={prefix}")
    client = redis.Redis.from_url(redis_server.url)
    other = Application(f"{redis_server.url}?prefix={prefix}")
    try:
        other.send("any.task")  # another process: loads the script, records "default"
        before = _calls(client)
        for _ in range(20):
            app.send("any.task")
        after = _calls(client)
        # The first send only: this process does not know that another recorded it.
        assert after.get("sadd", 0) - before.get("sadd", 0) == 1
        # The steady state: one command a send, the enqueue script (what runs inside it,
        # XADD and the rest, is counted too, but is no round trip).
        assert after["evalsha"] - before.get("evalsha", 0) == 20
        assert client.smembers(f"{{{prefix}}}:queues") == {b"default"}
        app.broker.purge("default")
        assert app.broker.queues() == ["default"]  # drained, still known
    finally:
        client.close()
        app.close()
        other.close()
