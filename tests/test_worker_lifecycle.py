"""A worker's life from run() to return: counting, stopping during an outage, helper threads
joined, and running once. Each test here failed before the worker was split by role."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tinyq_core import Application, JobFailed
from tinyq_core._worker.fetcher import OUTAGE_BACKOFF
from tinyq_memory import MemoryBroker, drain

from redis_server import RedisServer


def spin_until(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # pure Python: a timeout interrupts it
        pass


@pytest.mark.parametrize("executor", ["thread", "inline"])
def test_a_timed_out_job_counts_as_processed(executor: str) -> None:
    app = Application(MemoryBroker())
    spin = app.task(name="t.spin", timeout=0.2)(spin_until)
    h = spin.delay(5)
    if executor == "inline":
        assert drain(app) == 1  # drain() counts the runs it made
    else:
        worker = app.worker(concurrency=1, executor=executor)
        assert worker.run(burst=True) == 0
        assert worker.processed == 1
    with pytest.raises(JobFailed, match="JobTimeout"):
        h.result(0)


def test_a_cold_stop_during_an_outage_backoff_returns_at_once() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    worker = app.worker(concurrency=1)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()))
    broker.set_available(False)
    thread.start()
    # Stop half-way through the first backoff wait of at least a second.
    waits = [OUTAGE_BACKOFF.delay(n) for n in range(20)]
    first_long = next(n for n, wait in enumerate(waits) if wait >= 1.0)
    time.sleep(sum(waits[:first_long]) + waits[first_long] / 2)
    started = time.monotonic()
    worker.stop(cold=True)
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 0.6
    assert codes == [1]


def test_run_joins_every_thread_it_started() -> None:
    assert_run_joins_its_threads(Application(MemoryBroker()))


def test_run_joins_every_thread_it_started_on_redis(redis_server: RedisServer) -> None:
    # On Redis the mover sleeps in a blocking read (BLPOP) when the worker stops.
    assert_run_joins_its_threads(
        Application(f"{redis_server.url}?prefix=joins{uuid.uuid4().hex[:8]}"))


def assert_run_joins_its_threads(app: Application) -> None:
    app.task(name="t.f")(lambda: 1).delay()
    before = set(threading.enumerate())
    worker = app.worker(concurrency=3)
    assert worker.run(burst=True) == 0
    assert worker.processed == 1
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []  # housekeeper, mover and the executor's threads all ended
    app.close()


def test_a_worker_runs_once() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    f = app.task(name="t.f")(lambda: 1)
    worker = app.worker(concurrency=1)
    worker.run(burst=True)
    h = f.delay()
    with pytest.raises(RuntimeError, match="runs once"):
        worker.run(burst=True)
    assert h.status() == "queued"  # the second run leased nothing
    assert app.worker(concurrency=1).run(burst=True) == 0
    assert h.result(0) == 1
