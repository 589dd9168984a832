"""``tinyq -p N``: several worker processes under one parent, on a real redis-server."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyq_core import JobFailed

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

@app.task(name="work")
def work(i, seconds=0.0):
    time.sleep(seconds)
    r.sadd(f"{NS}:pids", os.getpid())
    r.hincrby(f"{NS}:runs", str(i), 1)
    return i
'''


def enqueue(project: AppProject, count: int, seconds: float = 0.0) -> None:
    project.app.tasks["work"].map([(i, seconds) for i in range(count)])


def pids(project: AppProject) -> set[int]:
    """The worker processes that ran a job."""
    return {int(p) for p in project.redis.smembers(f"{project.ns}:pids")}


def runs(project: AppProject) -> dict[int, int]:
    return {int(k): int(v) for k, v in project.redis.hgetall(f"{project.ns}:runs").items()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    yield p
    p.close()  # kills a supervisor still running: its children notice and stop by themselves
    for pid in pids(p):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_two_processes_share_the_work_and_stop_warm(project: AppProject) -> None:
    enqueue(project, 300, 0.005)
    parent = project.worker("-p", "2", "-w", "2")
    wait_until(lambda: len(runs(project)) == 300, 30, message="every job")
    assert len(pids(project)) == 2
    assert parent.pid not in pids(project)
    parent.send_signal(signal.SIGINT)
    assert parent.wait(20) == 0, project.output(parent)
    out = project.output(parent)
    assert out.count("Starting TinyQ worker") == 2
    assert out.count("Exit workers.") == 2
    assert not any(alive(pid) for pid in pids(project))


def test_a_dead_child_is_restarted_and_its_jobs_run(project: AppProject) -> None:
    parent = project.worker("-p", "2", "-w", "2")
    enqueue(project, 40, 0.01)
    wait_until(lambda: len(pids(project)) == 2, 30, message="both children to work")
    victim = min(pids(project))
    enqueue(project, 400, 0.02)
    time.sleep(0.5)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(pids(project)) == 3, 30, message="a restarted child to work")
    wait_until(lambda: len(runs(project)) == 400, 60, message="every job, the killed child's too")
    assert parent.poll() is None
    assert "restarting" in project.output(parent)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(20) == 0


def test_second_signal_stops_children_cold(project: AppProject) -> None:
    parent = project.worker("-p", "2", "-w", "1")
    # Both children up (a child still importing dies of SIGTERM at once) and one busy.
    wait_until(lambda: project.output(parent).count("Starting TinyQ worker") == 2, 30,
               message="both children")
    enqueue(project, 2, 30.0)  # long jobs
    wait_until(lambda: "Got a job" in project.output(parent), 30, message="a child to be busy")
    parent.send_signal(signal.SIGINT)
    wait_until(lambda: "warm shutdown of 2 worker processes" in project.output(parent), 10,
               message="the supervisor to take the first signal")
    parent.send_signal(signal.SIGINT)
    assert parent.wait(20) == 1
    assert project.output(parent).count("Exit workers.") == 2
    assert runs(project) == {}  # given back, not run to the end
    from tinyq_redis import RedisBroker

    assert RedisBroker(project.url).size("default") == 2  # both back in the queue


def test_burst_with_processes_exits_when_done(project: AppProject) -> None:
    enqueue(project, 100)
    parent = project.worker("-p", "2", "--burst")
    assert parent.wait(30) == 0, project.output(parent)
    assert len(runs(project)) == 100


def test_children_stop_when_the_supervisor_dies(project: AppProject) -> None:
    parent = project.worker("-p", "2", "-w", "1")
    # Both children up before the jobs come: else, on a loaded machine, the first child to
    # start ran all of them before the second one read.
    wait_until(lambda: project.output(parent).count("Starting TinyQ worker") == 2, 30,
               message="both children")
    enqueue(project, 40, 0.05)
    wait_until(lambda: len(pids(project)) == 2, 30, message="both children to work")
    parent.kill()  # SIGKILL: no chance to forward anything
    parent.wait()
    wait_until(lambda: not any(alive(pid) for pid in pids(project)), 15,
               message="orphans to stop")
    out = project.output(parent)
    assert "Supervisor" in out and "is gone, warm shutdown" in out


# -- os._exit inside a job ----------------------------------------------------------------------
# Found from outside the suite: a job calling os._exit(0) ended a single worker with status 0
# and no log line, and under -p the supervisor took status 0 as "finished": it stopped
# restarting, the job went from child to child, and the whole pool was gone with status 0.

EXITING_APP = '''
import ctypes
import os
from tinyq_core import Application

app = Application(os.environ["TINYQ_URL"])

@app.task(name="quit")
def quit():
    os._exit(0)

@app.task(name="quit_in_c")
def quit_in_c():
    ctypes.CDLL(None)._exit(0)  # past Python altogether: the parent sees status 0

# Retries to spare: a job prefetched beside the one that kills its worker is redelivered
# too, and its deliveries count toward the crash-loop limit (see the note in docs/worker.md).
@app.task(name="work", max_retries=5)
def work(i):
    return i
'''


@pytest.fixture
def exiting(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, EXITING_APP, url=redis_server.url)
    yield p
    p.close()


def test_os_exit_in_a_job_is_a_logged_crash_of_a_single_worker(exiting: AppProject) -> None:
    h = exiting.app.tasks["quit"].delay()
    worker = exiting.worker("-w", "1")
    assert worker.wait(30) == 1  # not 0: the worker did not finish
    out = exiting.output(worker)
    assert "os._exit(0) called in thread Worker-1: the worker process ends now" in out
    assert h.status() == "started"  # still leased: it runs again after its lease


@pytest.mark.parametrize(("task", "status"), [("quit", 1), ("quit_in_c", 0)])
def test_a_child_exiting_unasked_is_restarted_and_the_job_dead_lettered(
    exiting: AppProject, task: str, status: int
) -> None:
    h = exiting.app.tasks[task].delay()
    handles = exiting.app.tasks["work"].map([(i,) for i in range(20)])
    parent = exiting.worker("-p", "2", "-w", "1")
    # max_retries=0: the second crash is a crash loop, dead-lettered on its third delivery.
    wait_until(lambda: exiting.app.broker.dead_letters("default"), 60,
               message="the job that keeps exiting to be dead-lettered")
    assert [w.result(timeout=30) for w in handles] == list(range(20))
    with pytest.raises(JobFailed, match="crash loop"):
        h.result(timeout=0)
    assert parent.poll() is None, exiting.output(parent)  # the pool is still there
    out = exiting.output(parent)
    assert f"exited with status {status} without being asked to; restarting" in out
    assert exiting.stop(parent) is not None and parent.returncode == 0


def test_a_stop_signal_arriving_while_a_child_is_restarted_reaches_that_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stop signal can land while the supervisor starts a replacement child (inside
    Popen, before the child is recorded). That child must be told to stop too, or the pool
    waits for a worker nobody will ever stop."""
    import subprocess

    from tinyq_core import _supervisor

    real_popen = subprocess.Popen
    spawned: list[subprocess.Popen[bytes]] = []
    # The first child exits unasked at once; its replacement waits for SIGTERM (exit 0), or
    # exits by itself after 20 s, so that a missed signal fails the test instead of hanging.
    commands = [
        "raise SystemExit(1)",
        "import signal, sys, time; "
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(20)",
    ]

    def popen(command: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        process = real_popen([command[0], "-c", commands[len(spawned)]])
        spawned.append(process)
        if len(spawned) == 2:  # the stop signal, handled before Popen returns
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
        return process

    monkeypatch.setattr(_supervisor.subprocess, "Popen", popen)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        started = time.monotonic()
        status = _supervisor.Supervisor([], processes=1).run()
        took = time.monotonic() - started
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
        for process in spawned:
            process.kill()
            process.wait()
    assert len(spawned) == 2
    assert took < 10, f"the replacement child was never told to stop ({took:.1f} s)"
    assert status == 0
