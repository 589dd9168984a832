"""The job lifecycle hooks: every hook, in order, for each way a job ends; a plugin that
raises; message headers from a producer hook to the task."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest

from tinyq_core import Application, Retry
from tinyq_core.plugin import Job, hookimpl
from tinyq_memory import FakeClock, MemoryBroker, drain

from support.waiting import wait_until
from support.worker_thread import running_worker


class Recorder:
    """Records every lifecycle hook as (hook, detail), in calling order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def note(self, hook: str, detail: Any = None) -> None:
        with self.lock:
            self.calls.append((hook, detail))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    @hookimpl
    def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
        self.note("before_enqueue", job.task_name)

    @hookimpl
    def tinyq_after_enqueue(self, job: Job) -> None:
        self.note("after_enqueue", job.task_name)

    @hookimpl
    def tinyq_worker_started(self) -> None:
        self.note("worker_started")

    @hookimpl
    def tinyq_worker_stopping(self, cold: bool) -> None:
        self.note("worker_stopping", cold)

    @hookimpl
    def tinyq_job_received(self, attempt: int) -> None:
        self.note("received", attempt)

    @hookimpl
    def tinyq_job_recovered(self, attempt: int) -> None:
        self.note("recovered", attempt)

    @hookimpl(wrapper=True)
    def tinyq_run_job(self, job: Job) -> Generator[None, Any, Any]:
        self.note("run_start")
        try:
            value = yield
        except BaseException as exc:
            self.note("run_end", type(exc).__name__)
            raise
        self.note("run_end", value)
        return value

    @hookimpl
    def tinyq_job_succeeded(self, value: Any, duration: float) -> None:
        self.note("succeeded", value)
        assert duration >= 0

    @hookimpl
    def tinyq_job_timed_out(self, timeout: float) -> None:
        self.note("timed_out", timeout)

    @hookimpl
    def tinyq_job_retried(self, error: BaseException, delay: float) -> None:
        self.note("retried", (type(error).__name__, delay))

    @hookimpl
    def tinyq_job_failed(self, error: BaseException) -> None:
        self.note("failed", type(error).__name__)

    @hookimpl
    def tinyq_job_dead_lettered(self, job: Job | None, reason: str) -> None:
        self.note("dead_lettered", (job is not None, reason))

    @hookimpl
    def tinyq_job_given_back(self, started: bool) -> None:
        self.note("given_back", started)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(tinyq_broker: MemoryBroker, recorder: Recorder) -> Application:
    return Application(tinyq_broker, plugins=[recorder])


def test_a_job_that_succeeds(app: Application, recorder: Recorder) -> None:
    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    add.delay(1, 2)
    app.worker(concurrency=1).run(burst=True)
    assert recorder.calls == [
        ("before_enqueue", add.name), ("after_enqueue", add.name), ("worker_started", None),
        ("received", 1), ("run_start", None), ("run_end", 3), ("succeeded", 3),
        ("worker_stopping", False),
    ]


def test_a_job_retried_then_dead_lettered(app: Application, recorder: Recorder) -> None:
    @app.task(max_retries=1)
    def flaky() -> None:
        raise Retry(delay=7)

    flaky.delay()
    drain(app)
    jobs = [c for c in recorder.calls if c[0] not in ("worker_started", "worker_stopping")]
    assert jobs == [
        ("before_enqueue", flaky.name), ("after_enqueue", flaky.name),
        ("received", 1), ("run_start", None), ("run_end", "Retry"), ("retried", ("Retry", 7)),
        ("received", 1), ("run_start", None), ("run_end", "Retry"), ("failed", "Retry"),
        ("dead_lettered", (True, "failed after 2 attempt(s)")),
    ]


def test_a_message_that_never_decodes_is_dead_lettered_without_a_job(
    app: Application, tinyq_broker: MemoryBroker, recorder: Recorder
) -> None:
    from tinyq_core.plugin import Message

    tinyq_broker.enqueue([Message("x", "default", b"not json")])
    drain(app)
    [(_, (has_job, reason))] = [c for c in recorder.calls if c[0] == "dead_lettered"]
    assert not has_job and "undecodable" in reason
    assert "received" not in recorder.names()


def test_a_job_that_times_out(tinyq_broker: MemoryBroker, recorder: Recorder) -> None:
    app = Application(tinyq_broker, plugins=[recorder])

    # Long enough for the job to be in its loop when it times out under any load: a timeout
    # landing in the wrapper's own code, before the task started, would end the wrapper early.
    @app.task(timeout=1.0)
    def spin() -> None:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pass

    spin.delay()
    app.worker(concurrency=1).run(burst=True)
    names = recorder.names()
    assert names[names.index("timed_out"):names.index("timed_out") + 3] == [
        "timed_out", "failed", "dead_lettered"]
    assert ("timed_out", 1.0) in recorder.calls
    assert names.index("run_start") < names.index("timed_out")
    # The wrapper sees the job end too, when the timeout's exception reaches the task's thread:
    # under load that can be after the worker settled the job and returned.
    wait_until(lambda: ("run_end", "JobTimeout") in recorder.calls, 10,
               message="the run_job wrapper to see the JobTimeout")


def test_a_job_whose_worker_died_is_recovered(
    app: Application, tinyq_broker: MemoryBroker, tinyq_clock: FakeClock, recorder: Recorder
) -> None:
    @app.task()
    def job() -> str:
        return "ok"

    job.delay()
    tinyq_broker.reserve(["default"], 1, 0)  # a worker that took it, then died
    tinyq_clock.advance(tinyq_broker.visibility_timeout + 1)
    assert tinyq_broker.recover(["default"]) == 1
    drain(app)
    jobs = [c for c in recorder.calls if c[0] not in ("worker_started", "worker_stopping")]
    assert jobs[2:] == [("received", 2), ("recovered", 2), ("run_start", None),
                        ("run_end", "ok"), ("succeeded", "ok")]


def test_a_warm_stop_gives_back_the_prefetched_jobs(
    tinyq_broker: MemoryBroker, recorder: Recorder
) -> None:
    app = Application(tinyq_broker, plugins=[recorder])
    started, release = threading.Event(), threading.Event()

    @app.task()
    def block() -> str:
        started.set()
        release.wait(5)
        return "done"

    block.map([()] * 3)
    with running_worker(app, concurrency=1, prefetch=2) as worker:
        assert started.wait(5)
        wait_until(lambda: tinyq_broker.size("default") == 0, message="2 jobs prefetched")
        worker.stop()
        wait_until(lambda: recorder.names().count("given_back") == 2, message="given back")
        release.set()
    names = recorder.names()
    assert names.count("received") == 3 and names.count("succeeded") == 1
    assert [d for n, d in recorder.calls if n == "given_back"] == [False, False]
    assert names.index("worker_stopping") < names.index("given_back") < names.index("succeeded")
    assert ("worker_stopping", False) in recorder.calls


def test_a_cold_stop_gives_back_the_running_job(
    tinyq_broker: MemoryBroker, recorder: Recorder
) -> None:
    app = Application(tinyq_broker, plugins=[recorder])
    started = threading.Event()

    @app.task()
    def block() -> None:
        started.set()
        time.sleep(2)

    block.delay()
    with running_worker(app, concurrency=1, cold=True) as worker:
        assert started.wait(5)
        worker.stop(cold=True)
    assert ("given_back", True) in recorder.calls
    assert ("worker_stopping", True) in recorder.calls
    assert "succeeded" not in recorder.names()


class Broken:
    """A plugin whose every hook raises (on its own name)."""

    __name__ = "broken-plugin"

    @hookimpl
    def tinyq_before_enqueue(self, headers: dict[str, str]) -> None:
        raise RuntimeError("before_enqueue is broken")

    @hookimpl
    def tinyq_job_received(self) -> None:
        raise RuntimeError("received is broken")

    @hookimpl(wrapper=True)
    def tinyq_run_job(self) -> Generator[None, Any, Any]:
        yield
        raise RuntimeError("run_job is broken")

    @hookimpl
    def tinyq_job_succeeded(self) -> None:
        raise RuntimeError("succeeded is broken")


def test_a_hook_that_raises_is_logged_once_and_the_job_still_succeeds(
    tinyq_broker: MemoryBroker, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    app = Application(tinyq_broker, plugins=[recorder, Broken()])

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    handles = [add.delay(i, 1) for i in range(3)]
    with caplog.at_level(logging.ERROR, logger="tinyq.plugins"):
        drain(app)
    assert [h.result(0) for h in handles] == [1, 2, 3]
    assert recorder.names().count("succeeded") == 3  # the other plugin still ran each time
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    for hook in ("tinyq_before_enqueue", "tinyq_job_received", "tinyq_run_job",
                 "tinyq_job_succeeded"):
        said = [e for e in errors if hook in e]
        assert len(said) == 1, (hook, errors)
        assert "'broken-plugin'" in said[0]


def test_a_plain_run_job_hook_is_refused(tinyq_broker: MemoryBroker) -> None:
    from tinyq_core import PluginError

    class NotAWrapper:
        @hookimpl
        def tinyq_run_job(self) -> None:
            return None

    with pytest.raises(PluginError, match="wrapper=True"):
        Application(tinyq_broker, plugins=[NotAWrapper()])


class Wraps:
    """A run_job wrapper that notes its entry and exit in a shared list, and tries to change
    the job's value."""

    def __init__(self, name: str, log: list[str], fail_on_entry: bool = False) -> None:
        self.__name__, self.log, self.fail_on_entry = name, log, fail_on_entry

    @hookimpl(wrapper=True)
    def tinyq_run_job(self) -> Generator[None, Any, Any]:
        if self.fail_on_entry:
            raise RuntimeError("cannot start")
        self.log.append(f"enter {self.__name__}")
        value = yield
        self.log.append(f"leave {self.__name__}")
        return ("changed", value)


def test_wrappers_nest_and_cannot_change_the_outcome(
    tinyq_broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    # Registered first, called last: "inner" is the innermost wrapper.
    plugins = [Wraps("inner", log), Wraps("outer", log), Wraps("broken", log, True)]
    app = Application(tinyq_broker, plugins=plugins)

    @app.task()
    def job() -> int:
        log.append("task")
        return 7

    h = job.delay()
    with caplog.at_level(logging.ERROR, logger="tinyq.plugins"):
        drain(app)
    assert h.result(0) == 7
    assert log == ["enter outer", "enter inner", "task", "leave inner", "leave outer"]
    [said] = [r.getMessage() for r in caplog.records if "cannot start" in r.getMessage()]
    assert "'broken'" in said and "tinyq_run_job" in said
