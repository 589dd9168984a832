"""The ``tinyq_worker`` fixture of tinyq-memory's pytest plugin: a real worker in a thread."""

from __future__ import annotations

import threading
import time

import pytest

from tinyq_core import Application, Worker
from tinyq_memory import FakeClock

from support.waiting import wait_until


def test_jobs_run_on_the_worker_while_the_test_waits(
    tinyq_app: Application, tinyq_worker: Worker
) -> None:
    @tinyq_app.task()
    def double(m: int) -> tuple[int, str]:
        return m * 2, threading.current_thread().name

    value, ran_in = double.delay(21).result(timeout=5)
    assert value == 42
    assert ran_in != threading.current_thread().name  # not drained inline by the test
    assert tinyq_worker.processed == 1


@pytest.mark.tinyq_worker(concurrency=3, queues=["high"])
def test_the_marker_gives_the_worker_its_options(
    tinyq_app: Application, tinyq_worker: Worker
) -> None:
    started = threading.Semaphore(0)
    release = threading.Event()

    @tinyq_app.task(queue="high")  # not a queue the worker takes by default
    def hold() -> None:
        started.release()
        release.wait(5)

    handles = hold.map([()] * 6)
    try:
        for _ in range(3):
            assert started.acquire(timeout=5)
        assert not started.acquire(timeout=0.3)  # three slots, not the default eight
    finally:
        release.set()
    assert [h.result(timeout=5) for h in handles] == [None] * 6


def test_delayed_jobs_wait_for_the_fake_clock(
    tinyq_app: Application, tinyq_clock: FakeClock, tinyq_worker: Worker
) -> None:
    attempts: list[float] = []

    @tinyq_app.task(max_retries=1, retry_backoff=30.0)
    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise ConnectionError("try again later")
        return "ok"

    h = flaky.delay()
    wait_until(lambda: h.status() == "scheduled", message="the first attempt to fail")
    with pytest.raises(TimeoutError):
        h.result(timeout=0.3)  # its retry is due in about 30 s on the fake clock only
    tinyq_clock.advance(40)
    assert h.result(timeout=5) == "ok"
    assert len(attempts) == 2


def test_a_worker_that_does_not_stop_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading

        import pytest
        import tinyq_memory.pytest_plugin


        @pytest.fixture(autouse=True)
        def short_stop_timeout(monkeypatch):
            monkeypatch.setattr(tinyq_memory.pytest_plugin, "STOP_TIMEOUT", 0.5)


        def test_leaves_a_job_running(tinyq_app, tinyq_worker):
            started = threading.Event()

            @tinyq_app.task()
            def hang():
                started.set()
                threading.Event().wait(2)

            hang.delay()
            assert started.wait(5)
        """
    )
    result = pytester.runpytest("-p", "no:hypothesispytest")  # not needed; slow to load
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the tinyq_worker thread did not end within 0.5 s*"])


def test_your_own_application_on_the_fixture_worker(pytester: pytest.Pytester) -> None:
    """As docs/testing.md shows it: ``tinyq_app`` overridden to return the application, and a
    module-wide marker."""
    pytester.makepyfile(
        tasks="""
        from tinyq_core import Application

        app = Application("memory://")


        @app.task(queue="emails")
        def send(to):
            return f"sent to {to}"
        """,
        test_tasks="""
        import pytest

        from tasks import app, send

        pytestmark = pytest.mark.tinyq_worker(concurrency=2, queues=["emails"])


        @pytest.fixture
        def tinyq_app(tinyq_broker):
            app.use_broker(tinyq_broker)
            return app


        def test_send(tinyq_worker):
            assert send.delay("ann").result(timeout=5) == "sent to ann"


        def test_send_many(tinyq_worker):
            handles = send.map([("bob",), ("cy",)])
            assert [h.result(timeout=5) for h in handles] == ["sent to bob", "sent to cy"]
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:hypothesispytest")  # not needed; slow to load
    result.assert_outcomes(passed=2)
