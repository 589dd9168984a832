"""The public API of the application, tasks and handles, on the memory broker."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from tinyq_core import (
    Application,
    DuplicateTaskError,
    JobFailed,
    SerializationError,
    TinyqError,
)
from tinyq_memory import FakeClock, MemoryBroker, drain

from support.worker_thread import running_worker


def test_call_runs_now_and_delay_runs_on_worker(tinyq_app: Application) -> None:
    calls = []

    @tinyq_app.task()
    def add(m: int, n: int) -> int:
        calls.append((m, n))
        return m + n

    assert add(1, 2) == 3
    assert calls == [(1, 2)]
    h = add.delay(2, 3)
    assert isinstance(h.id, str) and h.id
    assert h.status() == "queued"
    assert calls == [(1, 2)]  # not run yet
    assert drain(tinyq_app) == 1
    assert h.status() == "succeeded"
    assert h.result(timeout=1) == 5
    assert calls == [(1, 2), (2, 3)]


def test_task_name_defaults_to_module_qualname(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def add(m: int, n: int) -> int:
        return m + n

    assert add.name == f"{__name__}.test_task_name_defaults_to_module_qualname.<locals>.add"
    assert add.name in tinyq_app.tasks


def test_same_name_twice_is_an_error(tinyq_app: Application) -> None:
    @tinyq_app.task(name="x.add")
    def add(m: int, n: int) -> int:
        return m + n

    with pytest.raises(DuplicateTaskError, match=r"x\.add"):

        @tinyq_app.task(name="x.add")
        def other(m: int, n: int) -> int:
            return m - n


def test_functions_with_one_name_in_two_scopes_do_not_collide(tinyq_app: Application) -> None:
    def make(k: int):  # type: ignore[no-untyped-def]
        class Scope:
            @staticmethod
            def add(m: int, n: int) -> int:
                return m + n + k

        Scope.__qualname__ = f"Scope{k}"
        Scope.add.__qualname__ = f"Scope{k}.add"
        return tinyq_app.task()(Scope.add)

    a, b = make(0), make(100)
    assert a.name != b.name
    ha, hb = a.delay(1, 1), b.delay(1, 1)
    drain(tinyq_app)
    assert (ha.result(0), hb.result(0)) == (2, 102)


def test_custom_name_round_trips(tinyq_app: Application) -> None:
    # The original tinyq stored func.__name__ in the job but registered the custom name.
    @tinyq_app.task(name="math.plus")
    def add(m: int, n: int) -> int:
        return m + n

    h = add.delay(4, 5)
    drain(tinyq_app)
    assert h.result(0) == 9
    sent = tinyq_app.send("math.plus", 1, 1)  # by the custom name
    drain(tinyq_app)
    assert sent.result(0) == 2


def test_send_by_name_from_a_producer_without_the_code(tinyq_broker: MemoryBroker) -> None:
    worker_app = Application(tinyq_broker)

    @worker_app.task(name="jobs.mul")
    def mul(m: int, n: int) -> int:
        return m * n

    producer = Application(tinyq_broker)  # knows no tasks
    h = producer.send("jobs.mul", 6, 7)
    drain(worker_app)
    assert producer.job(h.id).result(timeout=1) == 42


def test_job_handle_rebuilt_from_id(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def echo(x: str) -> str:
        return x

    h = echo.delay("hi")
    drain(tinyq_app)
    again = tinyq_app.job(h.id)
    assert again == h
    assert again.result(timeout=0) == "hi"


def test_apply_async_options(tinyq_app: Application, tinyq_clock: FakeClock) -> None:
    @tinyq_app.task()
    def add(m: int, n: int = 0) -> int:
        return m + n

    h = add.apply_async(args=(1,), kwargs={"n": 2}, queue="other", job_id="my-id")
    assert h.id == "my-id"
    assert tinyq_app.broker.size("other") == 1
    assert tinyq_app.broker.size("default") == 0
    later = add.apply_async(args=(1, 1), countdown=1.5)
    assert later.status() == "scheduled"
    at = add.apply_async(args=(2, 2), eta=dt.datetime.fromtimestamp(tinyq_clock.time() + 60,
                                                                     dt.timezone.utc))
    assert at.status() == "scheduled"
    drain(tinyq_app, ["other", "default"], advance_clock=False)
    assert h.result(0) == 3
    assert later.status() == "scheduled" and at.status() == "scheduled"
    tinyq_clock.advance(2)
    drain(tinyq_app, advance_clock=False)
    assert later.result(0) == 2
    assert at.status() == "scheduled"
    tinyq_clock.advance(60)
    drain(tinyq_app, advance_clock=False)
    assert at.result(0) == 4
    with pytest.raises(ValueError):
        add.apply_async(args=(1,), countdown=1, eta=5.0)


def test_map_enqueues_in_one_broker_call(tinyq_app: Application) -> None:
    calls = []
    original = tinyq_app.broker.enqueue

    def counting(messages):  # type: ignore[no-untyped-def]
        calls.append(len(messages))
        return original(messages)

    tinyq_app.broker.enqueue = counting  # type: ignore[method-assign]

    @tinyq_app.task()
    def add(m: int, n: int) -> int:
        return m + n

    handles = add.map([(1, 2), (3, 4), (5, 6)])
    assert calls == [3]
    drain(tinyq_app)
    assert [h.result(0) for h in handles] == [3, 7, 11]
    assert add.map([]) == []


def test_failure_raises_job_failed_with_remote_details(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def div(m: int, n: int) -> float:
        return m / n

    h = div.delay(1, 0)
    drain(tinyq_app)
    assert h.status() == "failed"
    with pytest.raises(JobFailed) as info:
        h.result(timeout=0)
    assert "ZeroDivisionError" in str(info.value)
    assert "division by zero" in str(info.value)
    assert "return m / n" in info.value.traceback
    assert isinstance(info.value, TinyqError)


def test_result_times_out(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def noop() -> None:
        return None

    h = noop.delay()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        h.result(timeout=0.2)
    assert time.monotonic() - started >= 0.19


def test_result_blocks_until_a_worker_finishes(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def add(m: int, n: int) -> int:
        return m + n

    h = add.delay(20, 22)
    with running_worker(tinyq_app, concurrency=2):
        assert h.result(timeout=5) == 42


def test_non_serialisable_argument_fails_at_delay(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def f(a: object, b: object) -> None:
        return None

    with pytest.raises(SerializationError) as info:
        f.delay(1, object())
    text = str(info.value)
    assert "'b'" in text and "json" in text and "object" in text
    assert tinyq_app.broker.size("default") == 0


def test_store_result_false_keeps_no_result(tinyq_app: Application) -> None:
    @tinyq_app.task(store_result=False)
    def f() -> int:
        return 1

    h = f.delay()
    drain(tinyq_app)
    assert h.status() == "unknown"
    with pytest.raises(TimeoutError):
        h.result(timeout=0)


def test_result_ttl(tinyq_broker: MemoryBroker, tinyq_clock: FakeClock) -> None:
    app = Application(tinyq_broker, result_ttl=10)

    @app.task()
    def f() -> int:
        return 1

    h = f.delay()
    drain(app)
    assert h.result(0) == 1
    tinyq_clock.advance(11)
    assert h.status() == "unknown"


def test_async_task_runs_on_the_worker(tinyq_app: Application) -> None:
    import asyncio

    @tinyq_app.task()
    async def slow_add(m: int, n: int) -> int:
        await asyncio.sleep(0.01)
        return m + n

    handles = [slow_add.delay(i, i) for i in range(4)]
    tinyq_app.worker(concurrency=2).run(burst=True)
    assert [h.result(1) for h in handles] == [0, 2, 4, 6]


def test_bare_decorator_works(tinyq_app: Application) -> None:
    @tinyq_app.task
    def f() -> int:
        return 7

    h = f.delay()
    drain(tinyq_app)
    assert h.result(0) == 7


class RecordingBroker(MemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.durable: list[tuple[int, bool]] = []

    def enqueue(self, messages, *, durable=False):  # type: ignore[no-untyped-def]
        self.durable.append((len(messages), durable))
        super().enqueue(messages, durable=durable)


def test_durable_enqueue_reaches_the_broker_by_default_and_per_call() -> None:
    broker = RecordingBroker()
    app = Application(broker, durable_enqueue=True)

    @app.task()
    def add(m: int, n: int) -> int:
        return m + n

    add.delay(1, 2)
    add.apply_async((1, 2), durable=False)
    add.map([(1, 2), (3, 4)])
    add.map([(1, 2)], durable=False)
    assert broker.durable == [(1, True), (1, False), (2, True), (1, False)]
    assert drain(app) == 5

    plain = Application(RecordingBroker())

    @plain.task()
    def mul(m: int, n: int) -> int:
        return m * n

    mul.delay(1, 2)
    mul.apply_async((1, 2), durable=True)
    assert plain.broker.durable == [(1, False), (1, True)]  # type: ignore[attr-defined]


def test_an_application_without_a_uri_uses_tinyq_url_else_a_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The embedded default: no server for a first run, and one variable to point every
    process elsewhere."""

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TINYQ_URL", raising=False)
    app = Application()

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    h = add.delay(1, 2)
    assert (tmp_path / "tinyq.db").exists()  # the working directory's file
    app.worker(concurrency=1).run(burst=True)
    assert h.result(timeout=5) == 3
    app.broker.close()
    monkeypatch.setenv("TINYQ_URL", "memory://")
    assert isinstance(Application().broker, MemoryBroker)


# -- $TINYQ_URL: one broker address for every process -------------------------------------------


def test_tinyq_url_overrides_the_uri_written_in_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A producer whose code says a.db, run with TINYQ_URL naming b.db, enqueues to b.db:
    the same variable that points a worker elsewhere points its producers there too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYQ_URL", "sqlite:///b.db")
    app = Application("sqlite:///a.db")
    assert app.broker_uri == "sqlite:///b.db"

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    add.delay(1, 2)
    app.close()
    assert (tmp_path / "b.db").exists() and not (tmp_path / "a.db").exists()


def test_use_broker_wins_over_tinyq_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's ``-u`` is applied through use_broker, after the variable: ``-u`` wins."""
    monkeypatch.setenv("TINYQ_URL", "sqlite:///never.db")
    app = Application("sqlite:///a.db")
    app.use_broker("memory://")
    assert app.broker_uri == "memory://" and isinstance(app.broker, MemoryBroker)


def test_a_broker_instance_is_not_overridden_by_tinyq_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TINYQ_URL", "sqlite:///never.db")
    broker = MemoryBroker()
    assert Application(broker).broker is broker


def test_the_suite_runs_without_the_developers_tinyq_url() -> None:
    """tests/conftest.py removes it, so that a developer's own setting cannot redirect the
    suite's applications (each test that wants it sets it)."""
    assert "TINYQ_URL" not in os.environ
