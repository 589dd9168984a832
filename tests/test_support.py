"""The test helpers in tests/support fail the test when they should."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import tinyq_core
from tinyq_core import Application

from support.environment import child_env
from support.waiting import wait_until
from support.worker_thread import running_worker


def test_wait_until_fails_saying_what_it_waited_for() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"timed out after 0\.1 s waiting for the x"):
        wait_until(lambda: False, 0.1, message="the x")
    wait_until(lambda: True, 0)  # true at once: no failure, even with no time left


def test_running_worker_fails_when_the_worker_does_not_stop(tinyq_app: Application) -> None:
    release = threading.Event()

    @tinyq_app.task()
    def hold() -> None:
        release.wait(5)

    h = hold.delay()
    try:
        with pytest.raises(pytest.fail.Exception, match=r"did not end within 0\.2 s of a warm"):
            with running_worker(tinyq_app, join_timeout=0.2, concurrency=1):
                wait_until(lambda: h.status() == "started", message="the job to start")
    finally:
        release.set()


def test_running_worker_checks_what_run_returned(tinyq_app: Application) -> None:
    with pytest.raises(AssertionError, match=r"worker.run\(\) returned 1, not 0"):
        with running_worker(tinyq_app) as worker:
            worker.stop(cold=True)  # but the block promised a warm stop


def test_subprocesses_import_the_tinyq_this_process_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import tinyq_core; print(tinyq_core.__file__)"],
        env=child_env(), capture_output=True, text=True, timeout=60, check=True,
    )
    assert out.stdout.strip() == tinyq_core.__file__
