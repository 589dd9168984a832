"""Cancelling running jobs (issue 15 item 2) on a worker thread: sync cooperative (a bare
return, any exception, check_cancelled), sync forced after a grace, async through asyncio, a
prefetched job, the retry path; the memory broker, and the SQLite one end to end."""

from __future__ import annotations

import asyncio
import re
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_cancel import Recorder

from tinyq_core import Application, BrokerUnavailable, Cancelled, JobCancelled, current_job
from tinyq_core._worker import cancels
from tinyq_core.plugin import CancelRequests
from tinyq_memory import MemoryBroker

from support.waiting import wait_until
from support.worker_thread import running_worker


def _started(app: Application, flag: threading.Event) -> None:
    wait_until(flag.is_set, message="the job to start")


@pytest.mark.parametrize("style", ["returns", "raises", "check_cancelled"])
def test_a_running_sync_job_stops_cooperatively(style: str) -> None:
    recorder = Recorder()
    app = Application(MemoryBroker(), plugins=[recorder])
    started = threading.Event()
    seen: list[bool] = []

    @app.task(name="t.loop", max_retries=3)
    def loop() -> None:
        started.set()
        job = current_job()
        seen.append(job.cancelled)
        while True:
            if style == "check_cancelled":
                job.check_cancelled()
            elif job.cancelled and style == "returns":
                return None  # a bare return: "cancelled" too
            elif job.cancelled:
                raise RuntimeError("stopping")  # any failure: "cancelled", not retried
            time.sleep(0.02)

    with running_worker(app, concurrency=2) as worker:
        h = loop.delay()
        _started(app, started)
        assert h.status() == "started"
        assert h.cancel() == "cancelling"
        with pytest.raises(JobCancelled):
            h.result(5)
    assert seen == [False]
    assert h.status() == "cancelled"
    assert recorder.calls == [("cancelled", h.id, True)]  # never retried
    assert worker._outbox is not None and worker._outbox.cancelled == 1
    assert app.broker.cancel_requests("default", [h.id]) == {}  # forgotten once settled


def test_a_cancelled_job_that_returns_a_value_keeps_its_success() -> None:
    app = Application(MemoryBroker())
    started, release = threading.Event(), threading.Event()

    @app.task(name="t.finish")
    def finish() -> str:
        started.set()
        release.wait(10)
        wait_until(lambda: current_job().cancelled, message="the flag")
        return "done anyway"

    with running_worker(app):
        h = finish.delay()
        _started(app, started)
        assert h.cancel() == "cancelling"
        release.set()
        assert h.result(5) == "done anyway"
    assert h.status() == "succeeded"


def test_a_sync_job_that_ignores_the_request_is_interrupted_after_its_grace() -> None:
    recorder = Recorder()
    app = Application(MemoryBroker(), plugins=[recorder])
    started = threading.Event()
    interrupted: list[BaseException] = []

    @app.task(name="t.stubborn", max_retries=2)
    def stubborn() -> None:
        started.set()
        try:
            while True:
                time.sleep(0.01)  # never looks at current_job().cancelled
        except BaseException as exc:
            interrupted.append(exc)
            raise

    with running_worker(app):
        h = stubborn.delay()
        _started(app, started)
        assert h.cancel(grace=0.2) == "cancelling"
        with pytest.raises(JobCancelled, match="interrupted after its grace"):
            h.result(5)
    wait_until(lambda: interrupted, message="the interrupt to land")
    assert type(interrupted[0]) is Cancelled
    assert recorder.calls == [("cancelled", h.id, True)]


def test_an_async_job_is_cancelled_through_asyncio() -> None:
    recorder = Recorder()
    app = Application(MemoryBroker(), plugins=[recorder])
    started = threading.Event()
    events: list[str] = []

    @app.task(name="t.sleeper", max_retries=2)
    async def sleeper() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    with running_worker(app):
        h = sleeper.delay()
        _started(app, started)
        assert h.cancel() == "cancelling"
        with pytest.raises(JobCancelled):
            h.result(5)
    assert events == ["cancelled"]
    assert recorder.calls == [("cancelled", h.id, True)]


def test_a_prefetched_job_flagged_before_it_starts_never_runs() -> None:
    recorder = Recorder()
    broker = MemoryBroker()
    app = Application(broker, plugins=[recorder])
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    @app.task(name="t.block")
    def block() -> None:
        started.set()
        release.wait(10)

    @app.task(name="t.next")
    def after() -> None:
        ran.append("next")

    with running_worker(app, concurrency=1, prefetch=1):
        first = block.delay()
        _started(app, started)
        second = after.delay()
        wait_until(lambda: broker.status(second.id) == "started", message="the prefetch")
        assert second.cancel() == "cancelling"  # leased: the worker holds it
        wait_until(lambda: second.status() == "cancelled", message="the flag")
        release.set()
        assert first.result(5) is None
    assert ran == []
    assert ("cancelled", second.id, False) in recorder.calls


def test_a_failing_job_cancelled_meanwhile_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The watcher does not look in time: only the retry path's own look can see the request.
    monkeypatch.setattr(cancels, "POLL_INTERVAL", 3600.0)
    broker = MemoryBroker()
    app = Application(broker)
    started, release = threading.Event(), threading.Event()

    @app.task(name="t.flaky", max_retries=5, retry_backoff=0.01)
    def flaky() -> None:
        started.set()
        release.wait(10)
        raise RuntimeError("boom")

    # The request lands while the job runs, before the watcher flagged it: the retry path
    # asks the broker once itself.
    with running_worker(app):
        h = flaky.delay()
        _started(app, started)
        assert isinstance(broker, CancelRequests)
        assert h.cancel() == "cancelling"
        release.set()
        with pytest.raises(JobCancelled):
            h.result(5)


def test_on_sqlite_a_waiting_job_is_removed_and_a_running_one_stopped(tmp_path: Path) -> None:
    """The same paths through the SQLite broker's tier (one file, as two processes share)."""
    app = Application(f"sqlite:///{tmp_path}/tinyq.db")
    started = threading.Event()

    @app.task(name="t.loop", max_retries=2)
    def loop() -> None:
        started.set()
        while True:
            current_job().check_cancelled()
            time.sleep(0.02)

    waiting = loop.apply_async(countdown=3600)
    assert waiting.cancel() == "cancelled"
    assert waiting.status() == "cancelled"
    with running_worker(app):
        h = loop.delay()
        _started(app, started)
        assert h.cancel() == "cancelling"
        with pytest.raises(JobCancelled):
            h.result(5)
    assert h.status() == "cancelled"
    app.close()




def test_the_reindex_example_of_tasks_md_stops_when_cancelled() -> None:
    fence = re.compile(r"^ *```python\n(.*?)^ *```", re.MULTILINE | re.DOTALL)  # in a list
    text = (Path(__file__).resolve().parents[1] / "docs" / "tasks.md").read_text()
    [block] = [textwrap.dedent(b) for b in fence.findall(text)
               if textwrap.dedent(b).startswith("@app.task()\ndef reindex")]
    app = Application(MemoryBroker())
    indexed: list[int] = []

    def index(i: int) -> None:
        indexed.append(i)
        time.sleep(0.01)

    namespace: dict[str, Any] = {"app": app, "current_job": current_job, "index": index}
    exec(block, namespace)
    with running_worker(app):
        h = namespace["reindex"].delay(list(range(100_000)))
        wait_until(lambda: indexed, message="the job to start")
        assert h.cancel() == "cancelling"
        with pytest.raises(JobCancelled):
            h.result(5)
    assert 0 < len(indexed) < 100_000


class SettlesRefused(MemoryBroker):
    """Refuses the worker's reports (its acks), and pings (so that the worker takes it for an
    outage, not for a poison outcome), while ``refusing``; cancel requests work."""

    refusing = False

    def settle_and_reserve(self, request: Any) -> Any:
        if self.refusing and request.acks:
            raise BrokerUnavailable("reports refused for the test")
        return super().settle_and_reserve(request)

    def ack(self, deliveries: Any) -> Any:
        if self.refusing:
            raise BrokerUnavailable("reports refused for the test")
        return super().ack(deliveries)

    def ping(self) -> None:
        if self.refusing:
            raise BrokerUnavailable("reports refused for the test")
        super().ping()


def test_a_cancel_request_is_kept_until_the_cancelled_jobs_ack_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed after its cancelled job's outcome went into its outbox but before the
    ack reached the broker: the job is delivered again, and must still find its request."""
    monkeypatch.setattr(cancels, "POLL_INTERVAL", 0.05)
    broker = SettlesRefused()
    app = Application(broker)
    started = threading.Event()

    @app.task(name="t.stops")
    def stops() -> None:
        started.set()
        while not current_job().cancelled:
            time.sleep(0.01)

    with running_worker(app, concurrency=1):
        h = stops.delay()
        _started(app, started)
        broker.refusing = True
        assert h.cancel() == "cancelling"
        time.sleep(0.5)  # ten looks of the watcher while the ack cannot be sent
        assert broker.cancel_requests("default", [h.id]), "forgotten before its ack was sent"
        broker.refusing = False
        wait_until(lambda: h.status() == "cancelled", timeout=10)
        wait_until(lambda: not broker.cancel_requests("default", [h.id]), timeout=10,
                   message="the request to be forgotten once the ack was sent")
    app.close()
