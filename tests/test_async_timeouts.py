"""Timeouts of ``async def`` tasks: the job's coroutine is cancelled on its thread's event
loop, so nothing of it runs later inside another job on that thread (hardening item 13)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tinyq_core import Application, JobFailed
from tinyq_memory import MemoryBroker

from support.waiting import wait_until
from support.worker_thread import running_worker


def test_a_timed_out_async_job_is_cancelled_and_never_resumes_in_the_next_job() -> None:
    app = Application(MemoryBroker())
    events: list[tuple[str, float]] = []

    def note(event: str) -> None:
        events.append((event, time.monotonic()))

    @app.task(name="t.slow", timeout=0.3)
    async def slow() -> None:
        note("slow started")
        try:
            await asyncio.sleep(1.5)
        except asyncio.CancelledError:
            note("slow cancelled")
            raise
        note("slow ran on after its sleep")  # must never happen: the job had timed out

    @app.task(name="t.after")
    async def after() -> str:
        note("after started")
        await asyncio.sleep(2.0)  # past the end of slow's sleep, on the same loop
        note("after finished")
        return "after"

    timed_out = slow.delay()
    second = after.delay()
    # The inline executor runs async jobs one at a time on its thread's own event loop (the
    # thread executor runs them on the worker's event loop: tests/test_async_loop.py).
    worker = app.worker(concurrency=1, executor="inline")
    assert worker.run(burst=True) == 0
    assert [event for event, _ in events] == [
        "slow started", "slow cancelled", "after started", "after finished"]
    with pytest.raises(JobFailed, match=r"JobTimeout: job exceeded its timeout of 0\.3s"):
        timed_out.result(0)
    assert second.result(0) == "after"
    moments = dict(events)
    # Cancelled at its deadline, not when its sleep happened to end.
    assert moments["slow cancelled"] - moments["slow started"] < 1.0
    assert worker.processed == 2


def test_the_loop_holds_nothing_of_a_timed_out_job() -> None:
    app = Application(MemoryBroker())
    loops: list[asyncio.AbstractEventLoop] = []

    @app.task(name="t.slow", timeout=0.2)
    async def slow() -> None:
        loops.append(asyncio.get_running_loop())
        child = asyncio.create_task(asyncio.sleep(10))  # started and never awaited
        await asyncio.sleep(5)
        await child

    @app.task(name="t.count")
    async def count_tasks() -> int:
        loops.append(asyncio.get_running_loop())
        return len(asyncio.all_tasks())  # only this job's own task

    slow.delay()
    counted = count_tasks.delay()
    assert app.worker(concurrency=1, executor="inline").run(burst=True) == 0
    assert counted.result(0) == 1
    assert loops[0] is loops[1]  # the thread's loop was kept, and is usable


def test_a_timed_out_async_job_that_swallows_its_cancellation_still_fails() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.stubborn", timeout=0.2)
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass  # wrong, but the job timed out all the same
        return "late"

    h = stubborn.delay()
    assert app.worker(concurrency=1).run(burst=True) == 0
    with pytest.raises(JobFailed, match="JobTimeout"):
        h.result(0)


def test_a_cold_stop_gives_back_a_running_async_job() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    started: list[float] = []

    @app.task(name="t.long")
    async def long() -> None:
        started.append(time.monotonic())
        await asyncio.sleep(1.0)

    h = long.delay()
    with running_worker(app, cold=True, concurrency=1):
        wait_until(lambda: started, message="the async job to start")
    assert h.status() == "queued"  # given back, to run again
    assert broker.size("default") == 1
