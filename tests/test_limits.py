"""Rate and concurrency limits (issue 16, items 1 and 2) on the memory broker: slots in time
on a fake clock (order, fairness, bursts, retries, redeliveries), concurrency under real
worker threads, and the errors for bad specs and for a broker without the tier."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_contract_tiers import RequiredOnlyBroker

from tinyq_core import Application, ConfigurationError, JobFailed, Retry
from tinyq_core._limits import parse_rate
from tinyq_core._worker.limits import RATE_BOOKED
from tinyq_memory import FakeClock, MemoryBroker, drain

from support.waiting import wait_until
from support.worker_thread import running_worker


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> Iterator[Application]:
    app = Application(MemoryBroker(clock=clock))
    yield app
    app.close()


def test_rate_specs_and_bad_ones_at_decoration_time(app: Application) -> None:
    assert parse_rate("100/s") == pytest.approx(0.01)
    assert parse_rate("10/m") == pytest.approx(6.0)
    assert parse_rate("1000/h") == pytest.approx(3.6)
    assert parse_rate("2 / second") == pytest.approx(0.5)
    for bad in ("100", "0/s", "10/d", "-1/s", "x/s", "1e9/s"):
        with pytest.raises(ValueError, match="rate_limit="):
            app.task(rate_limit=bad)
    with pytest.raises(ValueError, match="concurrency"):
        app.task(concurrency=0)
    with pytest.raises(ValueError, match="rate_key= needs rate_limit="):
        app.task(rate_key=lambda tenant: tenant)
    with pytest.raises(ValueError, match="concurrency_key= needs concurrency="):
        app.task(concurrency_key=lambda tenant: tenant)
    with pytest.raises(TypeError, match="rate_key="):
        app.task(rate_limit="1/s", rate_key="tenant")  # type: ignore[arg-type]


def test_a_rate_limited_task_starts_one_job_per_interval_in_order(
    app: Application, clock: FakeClock
) -> None:
    started: list[tuple[int, float]] = []

    @app.task(rate_limit="10/s")
    def tick(n: int) -> None:
        started.append((n, clock.time()))

    start = clock.time()
    tick.map(range(6))
    assert drain(app) == 6
    assert [n for n, _ in started] == list(range(6))  # slots handed out in arrival order
    assert [at - start for _, at in started] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], abs=0.01)


def test_rate_burst_lets_that_many_start_at_once_after_a_quiet_spell(
    app: Application, clock: FakeClock
) -> None:
    started: list[float] = []

    @app.task(rate_limit="1/s", rate_burst=3)
    def call(n: int) -> None:
        started.append(clock.time())

    start = clock.time()
    call.map(range(5))
    assert drain(app) == 5
    assert [at - start for at in started] == pytest.approx([0, 0, 0, 1, 2], abs=0.01)
    clock.advance(10)  # quiet: the burst is back, no more (unused slots are not saved up)
    start = clock.time()
    call.map(range(4))
    assert drain(app) == 4
    assert [at - start for at in started[5:]] == pytest.approx([0, 0, 0, 1], abs=0.01)
    with pytest.raises(ValueError, match="rate_burst= needs rate_limit="):
        app.task(rate_burst=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="rate_burst="):
            app.task(rate_limit="1/s", rate_burst=bad)  # type: ignore[arg-type]


def test_a_burst_of_one_key_does_not_delay_another_key(
    app: Application, clock: FakeClock
) -> None:
    started: dict[str, list[float]] = {"a": [], "b": []}

    @app.task(rate_limit="1/s", rate_key=lambda tenant, n: tenant)
    def call(tenant: str, n: int) -> None:
        started[tenant].append(clock.time())

    start = clock.time()
    call.map([("a", n) for n in range(10)] + [("b", 0), ("b", 1)])
    assert drain(app) == 12
    assert [at - start for at in started["a"]] == pytest.approx(list(range(10)), abs=0.01)
    assert [at - start for at in started["b"]] == pytest.approx([0.0, 1.0], abs=0.01)


def test_a_retry_books_a_new_slot_and_a_redelivery_does_not(
    app: Application, clock: FakeClock
) -> None:
    started: list[float] = []

    @app.task(rate_limit="1/m", max_retries=1)
    def flaky() -> None:
        started.append(clock.time())
        if len(started) == 1:
            raise Retry(delay=0)

    start = clock.time()
    flaky.delay()
    drain(app)
    # The retry waited for the next slot, a minute after the first.
    assert [at - start for at in started] == pytest.approx([0.0, 60.0], abs=0.01)

    # A job whose header says its slot is booked (it was, then its worker died) runs at once
    # even though the key's next slot is far away; one booked for an earlier run does not.
    started.clear()
    flaky.apply_async(headers={RATE_BOOKED: "0"})
    flaky.apply_async(headers={RATE_BOOKED: "7"})
    now = clock.time()
    drain(app)
    assert started[0] == pytest.approx(now, abs=0.01)
    assert started[1] > now + 59


def test_concurrency_is_never_exceeded_by_the_worker_threads() -> None:
    app = Application(MemoryBroker())
    lock = threading.Lock()
    running = [0]
    most = [0]
    done: list[int] = []

    @app.task(concurrency=2)
    def busy(n: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            done.append(n)

    busy.map(range(12))
    with running_worker(app, concurrency=8):
        wait_until(lambda: len(done) == 12, timeout=30)
    assert most[0] == 2  # eight threads, but two at once (without the limit: eight)
    assert sorted(done) == list(range(12))  # none lost, none ran twice
    app.close()


def test_concurrency_per_key_counts_each_key_apart() -> None:
    app = Application(MemoryBroker())
    lock = threading.Lock()
    running: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    done: list[Any] = []

    @app.task(concurrency=1, concurrency_key=lambda tenant, n: tenant)
    def work(tenant: str, n: int) -> None:
        with lock:
            running[tenant] += 1
            most[tenant] = max(most[tenant], running[tenant])
            both = running["a"] and running["b"]
        time.sleep(0.05)
        with lock:
            running[tenant] -= 1
            done.append((tenant, n, both))

    work.map([(t, n) for n in range(5) for t in "ab"])
    with running_worker(app, concurrency=6):
        wait_until(lambda: len(done) == 10, timeout=30)
    assert most == {"a": 1, "b": 1}
    assert any(both for _, _, both in done)  # the keys ran side by side
    app.close()


def test_a_broker_without_the_tier_refuses_a_limited_task(clock: FakeClock) -> None:
    app = Application(RequiredOnlyBroker(clock))

    @app.task(concurrency=1)
    def limited() -> None: ...

    with pytest.raises(ConfigurationError, match=r"JobLimits.*limited"):
        app.worker().run(burst=True)
    app.close()


def test_an_unlimited_task_never_asks_the_broker(app: Application) -> None:
    calls: list[str] = []
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    original = broker.acquire_slots, broker.book_rates
    broker.acquire_slots = lambda *a, **k: calls.append("slot") or original[0](*a, **k)  # type: ignore[method-assign]
    broker.book_rates = lambda *a, **k: calls.append("rate") or original[1](*a, **k)  # type: ignore[method-assign]

    @app.task()
    def plain() -> int:
        return 1

    @app.task(concurrency=1)
    def limited() -> int:
        return 2

    plain.delay()
    assert drain(app) == 1 and calls == []
    limited.delay()
    assert drain(app) == 1 and calls == ["slot"]


def test_a_key_function_that_raises_or_returns_no_str_fails_the_job(app: Application) -> None:
    @app.task(rate_limit="1/s", rate_key=lambda n: {0: "ok", 1: 7}.get(n) or 1 / 0)
    def keyed(n: int) -> int:
        return n

    handles = keyed.map([0, 1, 2])
    assert drain(app) == 3  # each ran to an outcome once: no loop of give-backs
    assert handles[0].result(timeout=1) == 0
    with pytest.raises(JobFailed, match="returned int, not str"):
        handles[1].result(timeout=1)
    with pytest.raises(JobFailed, match="ZeroDivisionError"):
        handles[2].result(timeout=1)


def test_the_example_of_limits_md_declares_what_it_says() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "limits.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(block.replace('"redis://localhost:6379/0"', '"memory://"'), namespace)
    app = namespace["app"]
    limits = {name.rsplit(".", 1)[-1]: task.options.limits for name, task in app.tasks.items()}
    assert limits["ping"].rate_interval == pytest.approx(0.01)
    assert limits["render"].rate_interval == pytest.approx(6.0)
    assert limits["export"].concurrency == 5
    assert limits["sync"].concurrency == 2
    job = namespace["sync"]._job(("acme",), {"full": True}, None, None, None)
    assert limits["sync"].concurrency_key_of(job).endswith(":acme")
    namespace["render"].delay("acme", "doc-1")
    namespace["sync"].delay("acme", full=True)
    assert drain(app) == 2
    app.close()
