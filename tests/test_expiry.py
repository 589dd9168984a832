"""Job expiry (issue 15 item 3): a job not started by its ``expires`` time never runs; its
status is "expired", ``result()`` raises JobExpired, it is logged once and counted."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tinyq_core import Application, JobExpired, JobFailed
from tinyq_core.plugin import hookimpl
from tinyq_memory import FakeClock, MemoryBroker, drain


class Recorder:
    def __init__(self) -> None:
        self.expired: list[str] = []

    @hookimpl
    def tinyq_job_expired(self, job: Any) -> None:
        self.expired.append(job.id)


def test_expiry_on_the_fake_clock(caplog: pytest.LogCaptureFixture) -> None:
    clock, recorder = FakeClock(), Recorder()
    app = Application(MemoryBroker(clock=clock), plugins=[recorder])
    ran: list[str] = []

    @app.task(name="t.report", expires=60)
    def report(name: str) -> str:
        ran.append(name)
        return name

    stale = report.delay("stale")  # expires 60 s after enqueue (the task's default)
    explicit = report.apply_async(("explicit",), expires=timedelta(seconds=30))
    fresh = report.apply_async(("fresh",), expires=3600)
    clock.advance(61)  # the worker starts late
    worker = app.worker()
    with caplog.at_level("WARNING", logger="tinyq.worker"):
        assert worker.run(burst=True) == 0
    assert ran == ["fresh"]
    assert fresh.result(0) == "fresh"
    for h in (stale, explicit):
        assert h.status() == "expired"
        with pytest.raises(JobExpired, match="Expired: not started by its expiry time"):
            h.result(0)
    with pytest.raises(JobFailed):  # except JobFailed catches it too
        stale.result(0)
    lines = [r for r in caplog.records if "expired" in r.getMessage()]
    assert len(lines) == 2  # once per job
    assert stale.id in lines[0].getMessage() or stale.id in lines[1].getMessage()
    assert "t.report" in lines[0].getMessage()
    assert sorted(recorder.expired) == sorted([stale.id, explicit.id])
    assert worker._outbox is not None and worker._outbox.expired == 2
    assert worker.heartbeat is not None and worker.heartbeat.info().expired == 2
    assert worker.processed == 3


def test_a_delayed_job_expires_if_its_due_time_is_past_its_expiry() -> None:
    clock = FakeClock()
    app = Application(MemoryBroker(clock=clock))

    @app.task(name="t.noop")
    def noop() -> None: ...

    h = noop.apply_async(countdown=120, expires=60)
    clock.advance(121)
    app.worker().run(burst=True)
    assert h.status() == "expired"


def test_expires_as_a_datetime_naive_meaning_utc() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.noop")
    def noop() -> None: ...

    past = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=5)
    h = noop.apply_async(expires=past)
    future = noop.apply_async(expires=datetime.now(timezone.utc) + timedelta(hours=1))
    app.worker().run(burst=True)
    assert h.status() == "expired"
    assert future.status() == "succeeded"


def test_expiry_for_real_with_a_worker_started_late() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    short = echo.apply_async((1,), expires=0.2)
    long = echo.apply_async((2,), expires=60)
    time.sleep(0.4)
    app.worker().run(burst=True)
    assert short.status() == "expired"
    assert long.result(0) == 2


def test_send_by_name_applies_the_tasks_expiry() -> None:
    clock = FakeClock()
    app = Application(MemoryBroker(clock=clock))

    @app.task(name="digest", expires=5)
    def digest() -> str:
        return "sent"

    handle = app.send("digest")
    clock.advance(10)
    drain(app)
    assert handle.status() == "expired"
