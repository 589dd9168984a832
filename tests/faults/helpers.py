"""Real worker processes on a real redis-server, for the process and fault tests.

``Project`` writes an ``app.py`` into a folder, imports it in the test process (to enqueue and
read results) and starts ``tinyq`` worker processes next to it, each logging to its own file.
Imported as ``faults.helpers`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from tinyq_core import Application

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


class Project:
    """An ``app.py`` (``source``, default :data:`APP`) on ``url`` with its own key prefix.

    ``query`` adds options to the application's URI (``"&socket_timeout=1"``); the app reads
    its URI from ``TINYQ_URL``, the key namespace of its bookkeeping from ``NS``, and whatever
    else ``env`` sets (for the test process too, until ``close``)."""

    def __init__(
        self,
        path: Path,
        url: str,
        source: str = APP,
        query: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.ns = uuid.uuid4().hex[:8]
        self.url = f"{url}?visibility_timeout=1&prefix={self.ns}{query}"
        (path / "app.py").write_text(textwrap.dedent(source))
        ours = {"TINYQ_URL": self.url, "NS": self.ns, **(env or {})}
        self.env = {**os.environ, **ours}
        self.env.pop("PYTHONPATH", None)
        self.redis = redis.Redis.from_url(url)
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: dict[subprocess.Popen[str], Path] = {}
        sys.path.insert(0, str(path))
        self._saved_env = {k: os.environ.get(k) for k in ours}
        os.environ.update(ours)  # the app module reads them when the test process imports it
        sys.modules.pop("app", None)
        importlib.invalidate_caches()
        self.module = importlib.import_module("app")
        self.app: Application = self.module.app

    def worker(self, *args: str) -> subprocess.Popen[str]:
        # Logs go to a file: an unread pipe fills up and blocks the worker's logging.
        path = self.path / f"worker{len(self.procs)}.log"
        log = open(path, "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tinyq_core", "-l", "info", *args], cwd=self.path,
            env=self.env, text=True, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        self.logs[proc] = path
        return proc

    def output(self, proc: subprocess.Popen[str]) -> str:
        return self.logs[proc].read_text()

    def stop(self, proc: subprocess.Popen[str], timeout: float = 20) -> str:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=timeout)
        return self.output(proc)

    def runs(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.redis.hgetall(f"{self.ns}:runs").items()}

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.app.close()
        self.redis.close()
        sys.path.remove(str(self.path))
        sys.modules.pop("app", None)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)
