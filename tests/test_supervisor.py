"""``tinyq -p N``: several worker processes under one parent, on a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from redis_server import RedisServer

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


class Setup:
    def __init__(self, path: Path, server: RedisServer) -> None:
        self.ns = uuid.uuid4().hex[:8]
        self.url = f"{server.url}?visibility_timeout=1&prefix={self.ns}"
        self.path = path
        (path / "app.py").write_text(textwrap.dedent(APP))
        self.env = {**os.environ, "TINYQ_URL": self.url, "NS": self.ns}
        self.env.pop("PYTHONPATH", None)
        self.redis = redis.Redis.from_url(server.url)
        self.log = path / "tinyq.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def enqueue(self, count: int, seconds: float = 0.0) -> None:
        script = (f"from app import work; work.map([(i, {seconds}) for i in range({count})])")
        subprocess.run([sys.executable, "-c", script], cwd=self.path, env=self.env, check=True)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.log, "a") as log:  # O_APPEND: parent and children share it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tinyq_core", "-l", "info", *args], cwd=self.path,
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        return self.proc

    def pids(self) -> set[int]:
        return {int(p) for p in self.redis.smembers(f"{self.ns}:pids")}

    def runs(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.redis.hgetall(f"{self.ns}:runs").items()}

    def output(self) -> str:
        return self.log.read_text()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def setup(tmp_path: Path, redis_server: RedisServer) -> Iterator[Setup]:
    s = Setup(tmp_path, redis_server)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.proc.kill()  # its children notice and stop by themselves
        s.proc.wait()
    for pid in s.pids():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_two_processes_share_the_work_and_stop_warm(setup: Setup) -> None:
    setup.enqueue(300, 0.005)
    parent = setup.start("-p", "2", "-w", "2")
    wait_until(lambda: len(setup.runs()) == 300, 30, "every job")
    assert len(setup.pids()) == 2
    assert parent.pid not in setup.pids()
    parent.send_signal(signal.SIGINT)
    assert parent.wait(20) == 0, setup.output()
    out = setup.output()
    assert out.count("Starting TinyQ worker") == 2
    assert out.count("Exit workers.") == 2
    assert not any(alive(pid) for pid in setup.pids())


def test_a_dead_child_is_restarted_and_its_jobs_run(setup: Setup) -> None:
    parent = setup.start("-p", "2", "-w", "2")
    setup.enqueue(40, 0.01)
    wait_until(lambda: len(setup.pids()) == 2, 30, "both children to work")
    victim = min(setup.pids())
    setup.enqueue(400, 0.02)
    time.sleep(0.5)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(setup.pids()) == 3, 30, "a restarted child to work")
    wait_until(lambda: len(setup.runs()) == 400, 60, "every job, the killed child's too")
    assert parent.poll() is None
    assert "restarting" in setup.output()
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(20) == 0


def test_second_signal_stops_children_cold(setup: Setup) -> None:
    parent = setup.start("-p", "2", "-w", "1")
    # Both children up (a child still importing dies of SIGTERM at once) and one busy.
    wait_until(lambda: setup.output().count("Starting TinyQ worker") == 2, 30, "both children")
    setup.enqueue(2, 30.0)  # long jobs
    wait_until(lambda: "Got a job" in setup.output(), 30, "a child to be busy")
    parent.send_signal(signal.SIGINT)
    time.sleep(0.5)
    parent.send_signal(signal.SIGINT)
    assert parent.wait(20) == 1
    assert setup.output().count("Exit workers.") == 2
    assert setup.runs() == {}  # given back, not run to the end
    from tinyq_redis import RedisBroker

    assert RedisBroker(setup.url).size("default") == 2  # both back in the queue


def test_burst_with_processes_exits_when_done(setup: Setup) -> None:
    setup.enqueue(100)
    parent = setup.start("-p", "2", "--burst")
    assert parent.wait(30) == 0, setup.output()
    assert len(setup.runs()) == 100


def test_children_stop_when_the_supervisor_dies(setup: Setup) -> None:
    parent = setup.start("-p", "2", "-w", "1")
    setup.enqueue(20, 0.01)
    wait_until(lambda: len(setup.pids()) == 2, 30, "both children to work")
    parent.kill()  # SIGKILL: no chance to forward anything
    parent.wait()
    wait_until(lambda: not any(alive(pid) for pid in setup.pids()), 15, "orphans to stop")
    assert "Supervisor" in setup.output() and "is gone, warm shutdown" in setup.output()
