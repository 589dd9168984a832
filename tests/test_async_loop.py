"""Async tasks on the worker's event loop (issue 19 item 1): many at once on one loop,
bounded by async_concurrency beside the sync threads; timeouts and cancels through task
cancellation; the shutdown ladder. The loop's lag: test_aloop_lag.py."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tinyq_core import Application, JobFailed, current_job
from tinyq_memory import MemoryBroker

from support.waiting import wait_until
from support.worker_thread import running_worker


def test_a_thousand_sleeping_jobs_run_at_once_on_one_loop() -> None:
    app = Application(MemoryBroker())
    loops: set[int] = set()

    @app.task(name="t.nap")
    async def nap(n: int) -> str:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(1)
        return f"{n}:{current_job().id}"  # current_job() is each task's own

    handles = [nap.delay(n) for n in range(1000)]
    began = time.monotonic()
    assert app.worker(concurrency=1, async_concurrency=1000).run(burst=True) == 0
    took = time.monotonic() - began
    assert [h.result(0) for h in handles] == [f"{n}:{h.id}" for n, h in enumerate(handles)]
    assert len(loops) == 1
    assert took < 5  # one at a time: 1,000 s; one per thread: 1,000 s with concurrency=1


def test_the_default_limit_runs_a_hundred_at_a_time() -> None:
    app = Application(MemoryBroker())
    running = peak = 0
    lock = threading.Lock()

    @app.task(name="t.nap")
    async def nap() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        await asyncio.sleep(0.5)
        with lock:
            running -= 1

    for _ in range(300):
        nap.delay()
    began = time.monotonic()
    assert app.worker(concurrency=2).run(burst=True) == 0
    assert peak == 100
    assert time.monotonic() - began < 5  # 3 rounds of 0.5 s, not 150


def test_sync_threads_stay_busy_while_async_jobs_run() -> None:
    app = Application(MemoryBroker())
    spans: dict[str, list[tuple[float, float]]] = {"sync": [], "async": []}

    @app.task(name="t.block")
    def block() -> None:
        began = time.monotonic()
        time.sleep(0.5)
        spans["sync"].append((began, time.monotonic()))

    @app.task(name="t.nap")
    async def nap() -> None:
        began = time.monotonic()
        await asyncio.sleep(0.5)
        spans["async"].append((began, time.monotonic()))

    for _ in range(4):
        block.delay()
    for _ in range(50):
        nap.delay()
    assert app.worker(concurrency=2).run(burst=True) == 0
    assert len(spans["sync"]) == 4 and len(spans["async"]) == 50
    # Two sync jobs at a time on the two threads, while all 50 async ones ran on the loop.
    first_sync_end = min(end for _, end in spans["sync"])
    assert sum(1 for began, _ in spans["sync"] if began < first_sync_end) == 2
    assert sum(1 for began, _ in spans["async"] if began < first_sync_end) == 50


def test_a_timeout_cancels_the_running_coroutine_and_retries_it() -> None:
    app = Application(MemoryBroker())
    attempts: list[str] = []
    cleaned: list[str] = []
    children_cancelled: list[str] = []
    kept: list[asyncio.Task[None]] = []

    async def child() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            children_cancelled.append("child")
            raise

    @app.task(name="t.slow", timeout=0.3, max_retries=1, retry_backoff=0.0)
    async def slow() -> None:
        attempts.append(current_job().id)
        kept.append(asyncio.create_task(child()))  # never awaited: ended with the job
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append("finally")

    @app.task(name="t.quick")
    async def quick() -> str:
        await asyncio.sleep(0.1)
        return "ok"

    h = slow.delay()
    other = quick.delay()
    began = time.monotonic()
    assert app.worker(concurrency=1).run(burst=True) == 0
    with pytest.raises(JobFailed, match=r"JobTimeout: job exceeded its timeout of 0\.3s"):
        h.result(0)
    assert other.result(0) == "ok"
    assert len(attempts) == 2  # the first run and its one retry
    assert cleaned == ["finally", "finally"]
    assert children_cancelled == ["child", "child"]
    assert time.monotonic() - began < 10


def test_cancel_of_a_running_coroutine_on_the_loop() -> None:
    app = Application(MemoryBroker())
    started = threading.Event()
    cleaned: list[bool] = []

    @app.task(name="t.long")
    async def long() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append(True)

    h = long.delay()
    with running_worker(app, concurrency=1):
        assert started.wait(10)
        h.cancel()
        wait_until(lambda: h.status() == "cancelled", message="the job to be cancelled")
    assert cleaned == [True]


def test_a_warm_stop_lets_running_coroutines_finish() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    started: list[int] = []
    finished: list[int] = []

    @app.task(name="t.nap")
    async def nap(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0.5)
        finished.append(n)
        return n

    handles = [nap.delay(n) for n in range(20)]
    with running_worker(app, concurrency=1):
        wait_until(lambda: len(started) == 20, message="all jobs to start")
    assert sorted(finished) == list(range(20))
    assert [h.result(0) for h in handles] == list(range(20))
    assert broker.size("default") == 0


def test_a_cold_stop_cancels_running_coroutines_and_gives_them_back() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    started: list[int] = []
    cancelled: list[int] = []

    @app.task(name="t.long")
    async def long(n: int) -> None:
        started.append(n)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    handles = [long.delay(n) for n in range(10)]
    loop_threads_before = {t.name for t in threading.enumerate()}
    with running_worker(app, cold=True, concurrency=1):
        wait_until(lambda: len(started) == 10, message="the async jobs to start")
    assert sorted(cancelled) == list(range(10))
    assert all(h.status() == "queued" for h in handles)  # given back, to run again
    assert broker.size("default") == 10
    assert "EventLoop" not in {t.name for t in threading.enumerate()} - loop_threads_before


def test_more_async_jobs_than_slots_wait_prefetched_and_all_run() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.nap")
    async def nap(n: int) -> int:
        await asyncio.sleep(0.05)
        return n

    handles = [nap.delay(n) for n in range(200)]
    # One async slot, with a batch sized for 8 threads too: the extra ones wait their turn.
    assert app.worker(concurrency=8, async_concurrency=1).run(burst=True) == 0
    assert [h.result(0) for h in handles] == list(range(200))


def test_no_thread_of_the_loop_outlives_run_and_progress_is_stored() -> None:
    app = Application(MemoryBroker())
    before = set(threading.enumerate())

    @app.task(name="t.report")
    async def report(n: int) -> int:
        current_job().set_progress({"done": n})
        await asyncio.sleep(0.05)
        with pytest.raises(TypeError):
            current_job().set_progress(float("nan") if n < 0 else object())  # type: ignore[arg-type]
        return n

    handles = [report.delay(n) for n in range(5)]
    assert app.worker(concurrency=1).run(burst=True) == 0
    assert [h.result(0) for h in handles] == list(range(5))
    assert [h.progress() for h in handles] == [{"done": n} for n in range(5)]
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []


def test_a_coroutine_that_swallows_its_timeout_still_fails_and_frees_its_slot() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.stubborn", timeout=0.2)
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass  # wrong, but the job timed out all the same
        return "late"

    @app.task(name="t.next")
    async def following() -> str:
        return "next"

    h = stubborn.delay()
    after = following.delay()
    assert app.worker(concurrency=1, async_concurrency=1).run(burst=True) == 0
    with pytest.raises(JobFailed, match="JobTimeout"):
        h.result(0)
    assert after.result(0) == "next"


def test_a_warm_stop_gives_back_async_jobs_still_waiting_for_a_slot() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    started: list[int] = []

    @app.task(name="t.nap")
    async def nap(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0.5)
        return n

    handles = [nap.delay(n) for n in range(10)]
    with running_worker(app, concurrency=4, async_concurrency=2):
        wait_until(lambda: len(started) == 2, message="two jobs to start")
    ran = [h for h in handles if h.status() == "succeeded"]
    assert len(ran) == len(started) == 2  # the running ones finished; no other one started
    assert broker.size("default") == 8  # given back, to run again
