"""The worker's scheduler on the memory broker, driven with a fake clock (its ``step``):
start, catch-up, stalls, outages, races, DST, hooks (a real worker: test_scheduler_worker)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from tinyq_core import Application
from tinyq_core._schedules import SCHEDULE_HEADER, Schedule
from tinyq_core._worker.ladder import ShutdownLadder
from tinyq_core._worker.scheduler import ON_TIME, Scheduler
from tinyq_core.plugin import Job, Message, hookimpl
from tinyq_memory import MemoryBroker

HOUR = 3600.0
T0 = 1_800_000_000.0  # a multiple of an hour: every=HOUR ticks there


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app() -> Iterator[Application]:
    app = Application("memory://")
    yield app
    app.close()


def scheduler_of(app: Application, clock: Clock) -> Scheduler:
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    return Scheduler(broker, list(app.schedule_registry), app._producer,
                     ShutdownLadder(threading.Condition()), clock)


def queued(app: Application, queue: str = "default") -> list[str]:
    """The ids of the jobs waiting in ``queue``, taken out."""
    return [d.id for d in app.broker.reserve([queue], 1000, 0)]


def hourly(app: Application, catch_up: bool = True) -> Schedule:
    return app.schedule("job", every=HOUR, name="hourly", catch_up=catch_up)


def test_a_new_schedule_does_not_run_at_start_and_then_runs_each_tick(app: Application) -> None:
    hourly(app)
    clock = Clock(T0 + 600)
    scheduler = scheduler_of(app, clock)
    assert scheduler.step() == pytest.approx(HOUR - 600)  # sleeps until the next tick
    assert queued(app) == []
    assert app.broker.last_ticks("default", ["hourly"]) == {"hourly": T0}  # recorded
    clock.now = T0 + HOUR
    assert scheduler.step() == pytest.approx(HOUR)
    clock.now = T0 + 2 * HOUR + 0.2
    scheduler.step()
    assert queued(app) == [f"hourly@{int((T0 + HOUR) * 1000)}",
                           f"hourly@{int((T0 + 2 * HOUR) * 1000)}"]


def test_a_stall_over_several_ticks_claims_the_latest_only(app: Application) -> None:
    hourly(app)
    clock = Clock(T0 + 1)
    scheduler = scheduler_of(app, clock)
    scheduler.step()
    clock.now = T0 + 5 * HOUR + 30  # the thread did not run for five ticks
    scheduler.step()
    assert queued(app) == [f"hourly@{int((T0 + 5 * HOUR) * 1000)}"]


@pytest.mark.parametrize("catch_up, runs", [(True, 1), (False, 0)])
def test_after_an_outage_one_catch_up_run_or_none(
    app: Application, catch_up: bool, runs: int
) -> None:
    hourly(app, catch_up)
    clock = Clock(T0 + 1)
    scheduler_of(app, clock).step()  # a worker ran, then every worker stopped
    clock.now = T0 + 10 * HOUR + 600  # ten ticks missed
    scheduler_of(app, clock).step()  # a worker starts again
    assert queued(app) == [f"hourly@{int((T0 + 10 * HOUR) * 1000)}"] * runs
    assert app.broker.last_ticks("default", ["hourly"]) == {"hourly": T0 + 10 * HOUR}
    scheduler_of(app, clock).step()  # another worker starting: nothing more
    assert queued(app) == []


def test_without_catch_up_a_tick_due_just_now_still_runs(app: Application) -> None:
    # A worker starting as a tick falls due must not record it without its job: the workers
    # already running would have claimed it with its job a moment later.
    hourly(app, catch_up=False)
    clock = Clock(T0 + 1)
    scheduler_of(app, clock).step()
    clock.now = T0 + HOUR + ON_TIME / 2
    scheduler_of(app, clock).step()
    assert queued(app) == [f"hourly@{int((T0 + HOUR) * 1000)}"]


def test_racing_schedulers_enqueue_one_job_per_tick(app: Application) -> None:
    app.schedule("job", every=1, name="second")
    clock = Clock(T0 + 0.5)
    schedulers = [scheduler_of(app, clock) for _ in range(3)]
    for _ in range(100):
        for scheduler in schedulers:
            scheduler.step()
        clock.now += 0.25
    expected = [f"second@{int((T0 + s) * 1000)}" for s in range(1, 26)]
    assert queued(app) == expected


@pytest.mark.parametrize("cron, runs", [("30 2 * * *", 1), ("0 * * * *", 7)])
def test_a_scheduler_across_the_fall_back_night(app: Application, cron: str, runs: int) -> None:
    # Europe/Berlin, 2024-10-27: 03:00 CEST -> 02:00 CET. From 23:10 to 05:10 local, a
    # scheduler looking every minute; the hour from 02:00 to 03:00 happens twice.
    app.schedule("job", cron=cron, tz="Europe/Berlin", name="night")
    start = datetime(2024, 10, 26, 21, 10, tzinfo=timezone.utc).timestamp()
    clock = Clock(start)
    scheduler = scheduler_of(app, clock)
    while clock.now < start + 7 * HOUR:
        scheduler.step()
        clock.now += 60
    ids = queued(app)
    assert len(ids) == len(set(ids)) == runs
    if cron == "30 2 * * *":  # once, at the first 02:30 (00:30 UTC)
        first = datetime(2024, 10, 27, 0, 30, tzinfo=timezone.utc).timestamp()
        assert ids == [f"night@{int(first * 1000)}"]


def test_an_outage_is_logged_once_and_the_tick_is_claimed_after_it(
    app: Application, caplog: pytest.LogCaptureFixture
) -> None:
    hourly(app)
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    clock = Clock(T0 + 1)
    scheduler = scheduler_of(app, clock)
    scheduler.step()
    broker.set_available(False)
    with caplog.at_level(logging.INFO, logger="tinyq.worker"):
        clock.now = T0 + HOUR
        for _ in range(5):
            assert scheduler.step() <= 1.0  # tried again within a second, not at the next tick
            clock.now += 0.5
        broker.set_available(True)
        clock.now += 1.0
        scheduler.step()
    assert caplog.text.count("could not reach the broker") == 1
    assert "reaches the broker again" in caplog.text
    assert queued(app) == [f"hourly@{int((T0 + HOUR) * 1000)}"]


def test_an_outage_at_start_is_retried(app: Application) -> None:
    hourly(app)
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    broker.set_available(False)
    clock = Clock(T0 + 1)
    scheduler = scheduler_of(app, clock)
    assert scheduler.step() == 1.0
    broker.set_available(True)
    scheduler.step()
    assert broker.last_ticks("default", ["hourly"]) == {"hourly": T0}


def test_app_schedules_lists_next_run_and_last_tick(app: Application) -> None:
    hourly(app)
    app.schedule("job", cron="0 3 * * *", tz="Europe/Berlin", name="nightly")
    [before_hourly, before_nightly] = app.schedules()
    assert before_hourly.schedule.name == "hourly" and before_hourly.last_tick is None
    assert before_nightly.schedule.spec == "cron 0 3 * * * Europe/Berlin"
    scheduler_of(app, Clock(T0 + 1)).step()
    hourly_info = app.schedules()[0]
    assert hourly_info.last_tick == T0
    assert hourly_info.next_run is not None and hourly_info.next_run % HOUR == 0


def test_enqueue_hooks_see_a_ticks_job_once() -> None:
    after: list[str] = []

    class Plugin:
        @hookimpl
        def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
            headers["seen-by"] = job.headers[SCHEDULE_HEADER]

        @hookimpl
        def tinyq_after_enqueue(self, job: Job) -> None:
            after.append(job.id)

    app = Application("memory://", plugins=[Plugin()])
    hourly(app)
    clock = Clock(T0 + 1)
    first, second = scheduler_of(app, clock), scheduler_of(app, clock)
    first.step()
    clock.now = T0 + HOUR
    first.step()
    second.step()  # loses the tick: no enqueue, no hook
    job_id = f"hourly@{int((T0 + HOUR) * 1000)}"
    assert after == [job_id]
    [delivery] = app.broker.reserve(["default"], 10, 0)
    job = app.codec.decode_job(delivery.message.body, "default", job_id)
    assert job.headers["seen-by"] == "hourly"
    assert job.enqueued_at is not None


def test_a_durable_application_claims_durably() -> None:
    claims: list[bool] = []

    class Recording(MemoryBroker):
        def claim_tick(self, queue: str, schedule: str, tick: float,
                       message: Message | None = None, *, durable: bool = False) -> bool:
            claims.append(durable)
            return super().claim_tick(queue, schedule, tick, message, durable=durable)

    app = Application(Recording(), durable_enqueue=True)
    hourly(app)
    scheduler = scheduler_of(app, Clock(T0 + 1))
    scheduler.step()
    assert claims == [True]
