"""Unique jobs (issue 15, item 4) on the memory broker (fake clock) and SQLite: one job per
task and arguments (or ``unique_key``) while one is queued, scheduled or running, the lock
kept ``unique_for`` after it finished, and 8 producer threads racing for one lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_contract_tiers import RequiredOnlyBroker

from tinyq_core import (
    Application,
    BrokerUnavailable,
    ConfigurationError,
    EnqueueError,
    JobFailed,
    JobHandle,
)
from tinyq_core._unique import arguments_digest
from tinyq_core.plugin import Broker, Job, Serializer, hookimpl
from tinyq_memory import FakeClock, MemoryBroker, drain
from tinyq_sqlite import SqliteBroker

from support.waiting import wait_until
from support.worker_thread import running_worker


class Recorder:
    def __init__(self) -> None:
        self.enqueued: list[str] = []
        self.failed: list[str] = []

    @hookimpl
    def tinyq_after_enqueue(self, job: Job) -> None:
        self.enqueued.append(job.id)

    @hookimpl
    def tinyq_enqueue_failed(self, job: Job, error: BaseException) -> None:
        self.failed.append(job.id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(clock: FakeClock, recorder: Recorder) -> Iterator[Application]:
    app = Application(MemoryBroker(clock=clock), plugins=[recorder])
    yield app
    app.close()


@pytest.fixture(params=["memory", "sqlite"])
def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Application]:
    """An application on each broker whose producers share a process: memory and SQLite."""
    broker: Broker = (MemoryBroker() if request.param == "memory"
                      else SqliteBroker(f"sqlite:///{tmp_path}/jobs.db"))
    app = Application(broker)
    yield app
    app.close()


# -- the key ---------------------------------------------------------------------------------


class ReprSerializer(Serializer):
    """Encodes anything by its repr: enough to tell the fallback's inputs apart."""

    name = "repr"

    def dumps(self, value: Any) -> bytes:
        return repr(value).encode()

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError


def test_equal_arguments_give_equal_keys_whatever_the_keyword_order() -> None:
    s = ReprSerializer()
    assert arguments_digest((1, [2]), {"a": 1, "b": {"x": 1, "y": 2}}, s) == arguments_digest(
        [1, (2,)], {"b": {"y": 2, "x": 1}, "a": 1}, s)
    assert arguments_digest((1,), {}, s) != arguments_digest((2,), {}, s)
    assert arguments_digest((1,), {}, s) != arguments_digest((1.0,), {}, s)  # JSON tells
    assert arguments_digest((1,), {}, s) != arguments_digest((True,), {}, s)
    assert arguments_digest((), {"a": 1}, s) != arguments_digest((1,), {}, s)
    # Not JSON (bytes): the serializer's bytes, keyword arguments sorted by name.
    assert arguments_digest((b"x",), {"a": 1, "b": 2}, s) == arguments_digest(
        (b"x",), {"b": 2, "a": 1}, s)
    assert arguments_digest((b"x",), {}, s) != arguments_digest((b"y",), {}, s)


def test_the_key_is_the_task_and_its_arguments(app: Application) -> None:
    @app.task(unique=True)
    def add(a: int, b: int = 0) -> int:
        return a + b

    @app.task(unique=True)
    def sub(a: int, b: int = 0) -> int:
        return a - b

    first = add.delay(1, b=2)
    assert add.apply_async((1,), {"b": 2}).id == first.id
    assert add.delay(2, b=1).id != first.id  # other arguments
    assert sub.delay(1, b=2).id != first.id  # another task, the same arguments
    assert app.broker.size("default") == 3


# -- while queued, scheduled, running ---------------------------------------------------------


def test_a_second_enqueue_while_queued_returns_the_first_handle(
    app: Application, recorder: Recorder
) -> None:
    @app.task(unique=True)
    def add(a: int, b: int) -> int:
        return a + b

    first = add.delay(1, 2)
    second = add.delay(1, 2)
    assert isinstance(second, JobHandle)
    assert (second.id, second.queue) == (first.id, "default")
    assert app.broker.size("default") == 1
    # tinyq_after_enqueue for both calls (the second job is answered by the holder), never
    # tinyq_enqueue_failed: a plugin that opened a span for each call closes it.
    assert len(recorder.enqueued) == 2 and recorder.enqueued[0] == first.id
    assert recorder.failed == []
    assert drain(app) == 1
    assert second.result(timeout=0) == 3
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    assert broker._locks == {}  # the finished job's lock record is gone, not left as garbage


def test_a_scheduled_job_holds_the_lock(app: Application, clock: FakeClock) -> None:
    @app.task(unique=True)
    def ping() -> str:
        return "pong"

    later = ping.apply_async(countdown=60)
    assert later.status() == "scheduled"
    assert ping.delay().id == later.id
    assert drain(app) == 1  # moves the clock to its due time
    assert ping.delay().id != later.id  # finished, unique_for 0: free


def test_a_second_enqueue_while_running_returns_the_running_job(app: Application) -> None:
    release = threading.Event()

    @app.task(unique=True)
    def slow(n: int) -> int:
        release.wait(10)
        return n

    with running_worker(app):
        running = slow.delay(7)
        wait_until(lambda: running.status() == "started", message="the job to start")
        assert slow.delay(7).id == running.id
        release.set()
        assert running.result(timeout=10) == 7
        after = slow.delay(7)  # unique_for 0: a finished job frees the lock
        assert after.id != running.id
        assert after.result(timeout=10) == 7


def test_unique_for_keeps_the_lock_after_the_job_finished(
    app: Application, clock: FakeClock
) -> None:
    @app.task(unique=True, unique_for=60)
    def report(day: str) -> str:
        return day

    first = report.delay("monday")
    assert drain(app) == 1
    assert first.result(timeout=0) == "monday"
    assert report.delay("monday").id == first.id  # finished, but kept for 60 s
    clock.advance(59)
    assert report.delay("monday").id == first.id
    clock.advance(2)
    assert report.delay("monday").id != first.id


def test_apply_async_unique_for_makes_any_task_unique(
    app: Application, clock: FakeClock
) -> None:
    @app.task()
    def plain(n: int) -> int:
        return n

    assert plain.delay(1).id != plain.delay(1).id  # not unique by default
    first = plain.apply_async((5,), unique_for=30)
    assert plain.apply_async((5,), unique_for=timedelta(seconds=30)).id == first.id
    assert plain.delay(5).id != first.id  # without the option it is not checked
    drain(app)
    assert plain.apply_async((5,), unique_for=30).id == first.id
    clock.advance(31)
    assert plain.apply_async((5,), unique_for=30).id != first.id


def test_unique_key_is_the_lock_across_arguments_and_tasks(app: Application) -> None:
    @app.task()
    def sync_account(user: int, full: bool = False) -> int:
        return user

    @app.task()
    def rebuild_account(user: int) -> int:
        return user

    first = sync_account.apply_async((1,), unique_key="account-1")
    assert sync_account.apply_async((1,), {"full": True}, unique_key="account-1").id == first.id
    assert rebuild_account.apply_async((1,), unique_key="account-1").id == first.id
    assert sync_account.apply_async((1,), unique_key="account-2").id != first.id
    assert app.broker.size("default") == 2


def test_a_retry_keeps_the_lock(app: Application, clock: FakeClock) -> None:
    @app.task(unique=True, max_retries=1, retry_backoff=100)
    def flaky() -> None:
        raise RuntimeError("down")

    first = flaky.delay()
    app.worker(concurrency=1, executor="inline").run(burst=True)  # first attempt fails
    assert first.status() == "scheduled"  # its retry waits in the queue
    assert flaky.delay().id == first.id


@pytest.mark.parametrize("unique_for", [0, 30])
def test_a_dead_lettered_unique_job_frees_the_lock(
    app: Application, clock: FakeClock, unique_for: float
) -> None:
    @app.task(unique=True, unique_for=unique_for)
    def broken() -> None:
        raise RuntimeError("always")

    first = broken.delay()
    assert drain(app) == 1
    with pytest.raises(JobFailed):
        first.result(timeout=0)
    assert [d.message.id for d in app.broker.dead_letters("default")] == [first.id]
    if unique_for:
        assert broken.delay().id == first.id  # failed, and kept as long as a success
        clock.advance(unique_for + 1)
    assert broken.delay().id != first.id


def test_map_sends_each_item_through_its_lock(app: Application) -> None:
    @app.task(unique=True)
    def square(n: int) -> int:
        return n * n

    handles = square.map([1, 2, 1, 3, 2])
    ids = [h.id for h in handles]
    assert ids[0] == ids[2] and ids[1] == ids[4]
    assert len(set(ids)) == 3
    assert app.broker.size("default") == 3
    drain(app)
    assert [h.result(timeout=0) for h in handles] == [1, 4, 1, 9, 4]


def test_a_refused_unique_map_retries_the_rest(app: Application) -> None:
    @app.task(unique=True)
    def square(n: int) -> int:
        return n * n

    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    broker.set_capacity(2)
    with pytest.raises(EnqueueError) as refused:
        square.map([1, 2, 1, 3, 4])
    assert [h.id for h in refused.value.enqueued][2] == refused.value.enqueued[0].id
    assert len(refused.value.not_enqueued) == 2  # 3 and 4 did not fit
    broker.set_capacity(None)
    handles = refused.value.retry()
    assert len(handles) == 5 and handles[:3] == refused.value.enqueued
    assert broker.size("default") == 4
    drain(app)
    assert [h.result(timeout=0) for h in handles] == [1, 4, 1, 9, 16]


def test_send_by_name_follows_the_registered_task(app: Application) -> None:
    @app.task(unique=True, name="mail.digest")
    def digest(user: int) -> int:
        return user

    assert app.send("mail.digest", 3).id == digest.delay(3).id


def test_bad_unique_options_are_refused(app: Application) -> None:
    @app.task()
    def plain() -> None:
        pass

    with pytest.raises(ValueError, match="unique_for"):
        plain.apply_async(unique_for=-1)
    with pytest.raises(ValueError, match="unique_key"):
        plain.apply_async(unique_key="")


def test_a_broker_without_unique_locks_is_refused_at_enqueue(clock: FakeClock) -> None:
    app = Application(RequiredOnlyBroker(clock))

    @app.task(unique=True)
    def job() -> None:
        pass

    with pytest.raises(ConfigurationError, match="RequiredOnlyBroker cannot keep unique"):
        job.delay()
    with pytest.raises(ConfigurationError, match="cannot keep unique locks"):
        app.tasks[job.name].apply_async(unique_key="k")
    assert app.broker.inner.size("default") == 0  # type: ignore[attr-defined]


# -- concurrent producers ----------------------------------------------------------------------


def race(app: Application, producers: int = 8) -> Sequence[JobHandle[Any]]:
    """``producers`` threads enqueue the same unique job at once; their handles."""
    task = app.tasks["race.job"]
    start = threading.Barrier(producers)
    handles: list[JobHandle[Any]] = []
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            start.wait(timeout=10)
            handles.append(task.delay("same", n=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    return handles


def test_eight_concurrent_producers_enqueue_one_job(any_app: Application) -> None:
    @any_app.task(unique=True, name="race.job")
    def job(what: str, n: int) -> str:
        return what

    handles = race(any_app)
    assert len(handles) == 8
    assert len({h.id for h in handles}) == 1
    assert any_app.broker.size("default") == 1
    assert any_app.broker.status(handles[0].id, "default") == "queued"


def test_unique_for_with_a_worker_on_sqlite(tmp_path: Path) -> None:
    """The SQLite broker on the real clock: the lock kept 1 s after the job finished."""
    app = Application(f"sqlite:///{tmp_path}/jobs.db")

    @app.task(unique=True, unique_for=1)
    def stamp(n: int) -> float:
        return time.time()  # when it finished: the lock is kept 1 s from a moment after

    try:
        with running_worker(app):
            first = stamp.delay(1)
            finished = first.result(timeout=10)
            again = stamp.delay(1)
            if time.time() - finished < 0.8:  # a slow machine may be past it already
                assert again.id == first.id
            wait_until(lambda: stamp.delay(1).id != first.id, 10, interval=0.05,
                       message="the kept lock to end")
            assert time.time() - finished > 0.95
    finally:
        app.close()


class ReleaseWatcher(MemoryBroker):
    """Records the status of each lock's owner when the worker keeps its lock, and can fail
    those calls as a broker down for a moment would."""

    def __init__(self, clock: FakeClock, fail: bool) -> None:
        super().__init__(clock=clock)
        self.fail = fail
        self.seen: list[str] = []

    def release_unique(self, queue: str, key: str, owner: str, keep_for: float = 0.0) -> None:
        self.seen.append(self.status(owner, queue))
        if self.fail:
            raise BrokerUnavailable("down for a moment")
        super().release_unique(queue, key, owner, keep_for)


def test_the_lock_is_kept_before_the_job_is_acknowledged(clock: FakeClock) -> None:
    broker = ReleaseWatcher(clock, fail=False)
    app = Application(broker)

    @app.task(unique=True, unique_for=10)
    def job() -> int:
        return 1

    first = job.delay()
    drain(app)
    assert broker.seen == ["started"]  # still leased: no moment without the lock
    assert job.delay().id == first.id


def test_a_failed_keep_is_logged_and_the_job_still_settles(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    broker = ReleaseWatcher(clock, fail=True)
    app = Application(broker)

    @app.task(unique=True, unique_for=10)
    def job() -> int:
        return 1

    first = job.delay()
    drain(app)
    assert first.result(timeout=0) == 1
    assert "Could not keep the unique lock" in caplog.text
    assert job.delay().id != first.id  # not kept: freed by the ack
