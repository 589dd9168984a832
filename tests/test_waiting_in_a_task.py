"""A task that waits for a job's result (hardening item 9): waiting for its own result fails at
once with a clear error; waiting forever for another job logs a warning once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest

from tinyq_core import Application, JobFailed
from tinyq_core._current import RunningJob, job_running, running_job
from tinyq_core._handle import waiting_warning_given
from tinyq_core.plugin import Job
from tinyq_memory import MemoryBroker


@pytest.fixture(autouse=True)
def fresh_warning() -> Iterator[None]:
    # The warning is logged once per process: here, once per test.
    if waiting_warning_given.locked():
        waiting_warning_given.release()
    yield
    if waiting_warning_given.locked():
        waiting_warning_given.release()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_job_waiting_for_its_own_result_fails_at_once(kind: str) -> None:
    app = Application(MemoryBroker())

    def wait_for_myself(my_id: str) -> object:
        return app.job(my_id).result(timeout=3)  # before the fix: deadlock, cut by the timeout

    if kind == "sync":
        task = app.task(name="t.self")(wait_for_myself)
    else:
        async def wait_for_myself_async(my_id: str) -> object:
            await asyncio.sleep(0)
            return wait_for_myself(my_id)

        task = app.task(name="t.self")(wait_for_myself_async)
    h = task.apply_async(args=("me",), job_id="me")
    started = time.monotonic()
    assert app.worker(concurrency=1).run(burst=True) == 0
    assert time.monotonic() - started < 1.0  # failed fast, not by a timeout
    with pytest.raises(JobFailed, match="RuntimeError: job me cannot wait for its own result") as e:
        h.result(0)
    assert e.value.exc_type == "RuntimeError"


def test_waiting_forever_for_another_job_in_a_task_logs_a_warning_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.child")
    def child(n: int) -> int:
        return n * 10

    @app.task(name="t.parent")
    def parent(n: int) -> int:
        return child.delay(n).result()  # another job: allowed, with a free slot for the child

    parents = [parent.delay(1), parent.delay(2)]
    with caplog.at_level(logging.WARNING, logger="tinyq"):
        # A slot for each parent, and one for the children: with 2, both could deadlock.
        assert app.worker(concurrency=3, prefetch=0).run(burst=True) == 0
    assert [h.result(0) for h in parents] == [10, 20]
    warnings = [r.getMessage() for r in caplog.records if "waits for the result" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "can deadlock" in warnings[0]


def test_waiting_with_a_timeout_for_another_job_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.child")
    def child() -> str:
        return "child"

    @app.task(name="t.parent")
    def parent() -> str:
        return child.delay().result(timeout=5)  # bounded: the opt-out

    h = parent.delay()
    with caplog.at_level(logging.WARNING, logger="tinyq"):
        assert app.worker(concurrency=2, prefetch=0).run(burst=True) == 0
    assert h.result(0) == "child"
    assert not [r for r in caplog.records if "waits for the result" in r.getMessage()]


def test_the_running_job_is_set_only_inside_a_job() -> None:
    app = Application(MemoryBroker())
    seen: list[RunningJob | None] = []

    @app.task(name="t.sync")
    def sync_task() -> None:
        seen.append(running_job())

    @app.task(name="t.async", queue="other")
    async def async_task() -> None:
        seen.append(running_job())

    sync_task.apply_async(job_id="s")
    async_task.apply_async(job_id="a")
    assert app.worker(concurrency=1, queues=["default", "other"]).run(burst=True) == 0
    assert sorted((j.id, j.queue) for j in seen if j is not None) == [
        ("a", "other"), ("s", "default")]
    assert running_job() is None


def test_job_running_restores_the_outer_value() -> None:
    outer, inner = RunningJob(Job("outer", "t")), RunningJob(Job("inner", "t"))
    with job_running(outer):
        with job_running(inner):
            assert running_job() is inner
        assert running_job() is outer
    assert running_job() is None
