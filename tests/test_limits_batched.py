"""Limits are taken a fetched batch at a time, by the fetcher (issue 16: a limited job cost
about twice a plain one on Redis, one blocking round trip from each job's thread): the broker
is asked once per batch, never from a job's thread; a limited async task runs on the event
loop like any other; a slot taken for a job that a stop gives back before it ran is freed."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinyq_core import Application, BrokerUnavailable
from tinyq_core._worker.limits import SLOT_WAITED
from tinyq_core.plugin import hookimpl
from tinyq_memory import FakeClock, MemoryBroker, drain

from redis_server import RedisServer
from support.waiting import wait_until
from support.worker_thread import running_worker


class CountingBroker(MemoryBroker):
    """Notes each batch call of the limits tier: the calling thread and the batch's size."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int, int]] = []  # (method, thread id, batch size)

    def book_rates(self, bookings: Sequence[tuple[str, str, float, int, str]]) -> list[float]:
        self.calls.append(("book_rates", threading.get_ident(), len(bookings)))
        return super().book_rates(bookings)

    def acquire_slots(self, requests: Sequence[tuple[str, str, int, str, float]], *,
                      wait: bool = False) -> list[bool]:
        self.calls.append(("acquire_slots", threading.get_ident(), len(requests)))
        return super().acquire_slots(requests, wait=wait)


def test_the_limits_of_a_fetched_batch_are_asked_at_once_by_the_fetcher() -> None:
    broker = CountingBroker()
    app = Application(broker)
    ran_in: set[int] = set()

    @app.task(rate_limit="1000000/s", concurrency=100)
    def limited(n: int) -> None:
        ran_in.add(threading.get_ident())

    limited.map(range(60))
    worker = app.worker(concurrency=8, scheduler=False)
    worker.run(burst=True)  # this thread is the fetcher
    assert worker.processed == 60
    fetcher = threading.get_ident()
    assert fetcher not in ran_in  # the jobs ran in the worker's threads
    by_method = {m: [(t, n) for name, t, n in broker.calls if name == m]
                 for m in ("book_rates", "acquire_slots")}
    for calls in by_method.values():
        assert {t for t, _ in calls} == {fetcher}  # never from a job's thread
        assert sum(n for _, n in calls) == 60  # each job asked once
        assert len(calls) < 30  # in batches, not one call per job
    app.close()


def test_a_limited_async_task_runs_on_the_event_loop_beside_others() -> None:
    app = Application(MemoryBroker())
    started: list[int] = []
    loops: set[int] = set()

    @app.task(concurrency=10, rate_limit="1000/s")
    async def waits_for_all(n: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        started.append(n)
        for _ in range(500):  # all five at once: only on the loop, with one thread
            if len(started) == 5:
                return len(started)
            await asyncio.sleep(0.01)
        return len(started)

    handles = waits_for_all.map(range(5))
    with running_worker(app, concurrency=1):
        values = [h.result(timeout=30) for h in handles]
    assert values == [5] * 5
    assert len(loops) == 1  # the worker's one event loop, not a loop per thread
    app.close()


class BlockingJobs:
    """An application on a memory broker whose task (concurrency 5) blocks until
    ``release`` is set; ``began`` lists the jobs that started."""

    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.app = Application(self.broker)
        self.release = threading.Event()
        self.began: list[int] = []

        @self.app.task(concurrency=5)
        def blocks(n: int) -> None:
            self.began.append(n)
            self.release.wait(10)

        self.blocks = blocks


def test_the_slot_of_a_job_given_back_at_a_stop_is_freed() -> None:
    jobs = BlockingJobs()
    broker, app, release, began = jobs.broker, jobs.app, jobs.release, jobs.began
    jobs.blocks.map(range(3))
    # One thread: the first job runs, the next waits its turn in the worker (prefetched,
    # its slot taken at the fetch) and is given back by the stop without having run.
    with running_worker(app, concurrency=1, cold=True) as worker:
        wait_until(lambda: began and worker.processed == 0, timeout=10)
        held = _holders(broker, "default")
        assert held, "the prefetched job holds no slot: the test cannot tell"
    release.set()
    wait_until(lambda: not _holders(broker, "default"), timeout=10)
    app.close()


def _holders(broker: MemoryBroker, queue: str) -> list[Any]:
    """The holders of the task's concurrency slots still leased."""
    state = broker._limit_state  # what the memory broker keeps, to look at it in a test
    now = broker.clock.time()
    return [holder for (q, _), slots in state.slots.items() if q == queue
            for holder, ends in slots.items() if ends > now]


class SlotsDownOnce(MemoryBroker):
    """Books rate slots, but fails the first call that takes concurrency slots."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.tokens: list[str] = []
        self.slot_calls = 0

    def book_rates(self, bookings: Sequence[tuple[str, str, float, int, str]]) -> list[float]:
        self.tokens += [token for *_, token in bookings]
        return super().book_rates(bookings)

    def acquire_slots(self, requests: Sequence[tuple[str, str, int, str, float]], *,
                      wait: bool = False) -> list[bool]:
        self.slot_calls += 1
        if self.slot_calls == 1:
            raise BrokerUnavailable("down for a moment")
        return super().acquire_slots(requests, wait=wait)


def test_a_broker_failing_between_booking_and_slots_keeps_the_bookings() -> None:
    broker = SlotsDownOnce(FakeClock())
    app = Application(broker)
    ran: list[int] = []

    @app.task(rate_limit="1000/s", concurrency=10)
    def limited(n: int) -> None:
        ran.append(n)

    limited.map(range(3))
    assert drain(app) == 3  # given back (not failed) by the failure, then run
    assert sorted(ran) == [0, 1, 2]
    assert broker.slot_calls >= 2
    assert sorted(broker.tokens) == sorted(set(broker.tokens))  # none booked twice


class CountFetches:
    def __init__(self) -> None:
        self.received: dict[str, int] = {}

    @hookimpl
    def tinyq_job_received(self, job: Any, attempt: int) -> None:
        self.received[job.id] = self.received.get(job.id, 0) + 1


def _waiting_jobs_are_woken_in_order(broker: Any) -> None:
    """Five jobs, one slot, four threads: the four that find the slot taken wait (given back
    delayed) and are woken one by one as the slot frees, in the queue's order: without
    wake-ups they would be back after 1-2 s once, then wait 20 s or more. A job is fetched
    twice (to find the slot taken, to run), or three times when its first short wait ends
    before its turn (SQLite's polling worker is slower than the 1-2 s)."""
    ran: list[int] = []
    fetches = CountFetches()
    app = Application(broker, plugins=[fetches])

    @app.task(concurrency=1)
    def one_at_a_time(n: int) -> None:
        ran.append(n)
        time.sleep(0.05)

    one_at_a_time.map(range(5))
    with running_worker(app, concurrency=4):
        wait_until(lambda: len(ran) == 5, timeout=15, message="the waiting jobs to be woken")
    assert ran == [0, 1, 2, 3, 4]
    assert max(fetches.received.values()) <= 3
    app.close()


def test_jobs_waiting_for_a_slot_are_woken_in_order() -> None:
    _waiting_jobs_are_woken_in_order(MemoryBroker())


def test_jobs_waiting_for_a_slot_are_woken_in_order_on_redis(redis_server: RedisServer) -> None:
    _waiting_jobs_are_woken_in_order(f"{redis_server.url}?prefix=w{uuid.uuid4().hex[:8]}")


def test_jobs_waiting_for_a_slot_are_woken_in_order_on_sqlite(tmp_path: Path) -> None:
    _waiting_jobs_are_woken_in_order(f"sqlite:///{tmp_path / 'q.db'}")


def test_a_hoarded_job_given_back_frees_its_slot_at_once() -> None:
    """A prefetched job given back because the worker's one thread is busy with a long job
    (HeldJobs.take_hoarded) frees the slot taken at its fetch then, not when the thread
    comes to it: it may run on another worker meanwhile, and must not hold a slot here."""
    jobs = BlockingJobs()
    broker, app, release, began = jobs.broker, jobs.app, jobs.release, jobs.began
    handles = jobs.blocks.map(range(2))
    with running_worker(app, concurrency=1):
        wait_until(lambda: began == [0], timeout=10)
        wait_until(lambda: handles[1].status() == "queued", timeout=10,
                   message="the prefetched job to be given back")
        wait_until(lambda: _holders(broker, "default") == [handles[0].id], timeout=5,
                   message="its slot to be freed")
        release.set()
        wait_until(lambda: began == [0, 1], timeout=10)
    app.close()


def test_a_waiter_whose_job_is_not_delayed_keeps_its_place_only_for_a_while() -> None:
    """Found without a delayed job, a waiter that just waited keeps its place (its worker's
    give-back is on its way); one that waited longer than the grace is dropped (its job ran
    elsewhere or was cancelled): it must not block the key's waiters for ever."""
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    queue, key = "default", "k"
    assert broker.acquire_slot(queue, key, 1, "running", 600)
    assert broker.acquire_slots([(queue, key, 1, "on-its-way", 600.0)], wait=True) == [False]
    broker.release_slot(queue, key, "running")
    assert list(broker._limit_state.waiters[queue, key]) == ["on-its-way"]  # kept
    assert broker.acquire_slot(queue, key, 1, "running", 600)
    clock.advance(11)
    broker.release_slot(queue, key, "running")
    assert list(broker._limit_state.waiters[queue, key]) == []  # dropped


def test_a_job_without_a_slot_looks_again_soon_once_then_waits_to_be_woken() -> None:
    """No wake-up comes when the slot freed while the job was being given back: its first
    wait is short (1-2 s); after that it is a known waiter, and its 20-40 s only matter if no
    wake-up comes at all."""
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    app = Application(broker)

    @app.task(name="one", concurrency=1)
    def one() -> None: ...

    assert broker.acquire_slot("default", "one", 1, "another-job", 600)  # the slot is taken
    one.delay()
    waits = []
    for _ in range(2):
        assert app.worker(concurrency=2, scheduler=False).run(burst=True) == 0
        [(due, _, message)] = broker._delayed
        waits.append(due - clock.time())
        assert app.codec.decode_job(message.body, "default").headers[SLOT_WAITED] == "0"
        clock.advance(waits[-1])
    assert 1.0 <= waits[0] <= 2.0 and 20.0 <= waits[1] <= 40.0
    app.close()
