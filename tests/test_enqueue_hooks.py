"""The producer's hooks when an enqueue fails in part or whole: ``tinyq_after_enqueue`` for
every job that went in (at ``EnqueueError.retry()`` too), ``tinyq_enqueue_failed`` for the
others, so that a plugin holding something per job (a tracing span) can always let go."""

from __future__ import annotations

import threading

import pytest

from tinyq_core import Application, EnqueueError, SerializationError
from tinyq_core.plugin import Job, hookimpl
from tinyq_memory import MemoryBroker, drain


class EnqueueRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def tinyq_after_enqueue(self, job: Job) -> None:
        self.calls.append(("after", job.id))

    @hookimpl
    def tinyq_enqueue_failed(self, job: Job, error: BaseException) -> None:
        self.calls.append(("failed:" + type(error).__name__, job.id))


@pytest.fixture
def recorder() -> EnqueueRecorder:
    return EnqueueRecorder()


def test_a_partial_enqueue_and_its_retries_call_after_enqueue_once_per_job(
    tinyq_broker: MemoryBroker, recorder: EnqueueRecorder
) -> None:
    app = Application(tinyq_broker, plugins=[recorder])

    @app.task()
    def f(x: int) -> int:
        return x

    ids = ["a", "b", "c", "d"]
    tinyq_broker.set_capacity(2)
    with pytest.raises(EnqueueError) as info:
        f.map(range(4), job_ids=ids)
    assert recorder.calls == [("after", "a"), ("after", "b"),
                              ("failed:EnqueueError", "c"), ("failed:EnqueueError", "d")]
    recorder.calls.clear()
    assert drain(app) == 2
    tinyq_broker.set_capacity(1)
    with pytest.raises(EnqueueError) as again:
        info.value.retry()
    assert recorder.calls == [("after", "c"), ("failed:EnqueueError", "d")]
    recorder.calls.clear()
    tinyq_broker.set_capacity(None)
    handles = again.value.retry()
    assert recorder.calls == [("after", "d")]  # only what this retry sent
    assert drain(app) == 2
    assert [h.result(0) for h in handles] == [0, 1, 2, 3]


def test_an_enqueue_that_fails_before_the_broker_calls_enqueue_failed(
    tinyq_broker: MemoryBroker, recorder: EnqueueRecorder
) -> None:
    app = Application(tinyq_broker, plugins=[recorder])

    @app.task()
    def f(x: object) -> None:
        return None

    with pytest.raises(SerializationError):
        f.apply_async((threading.Lock(),), job_id="x")
    assert recorder.calls == [("failed:SerializationError", "x")]
    assert tinyq_broker.size("default") == 0


def test_a_broker_error_calls_enqueue_failed(
    tinyq_broker: MemoryBroker, recorder: EnqueueRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Application(tinyq_broker, plugins=[recorder])

    @app.task()
    def f() -> None:
        return None

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tinyq_broker, "enqueue", down)
    with pytest.raises(ConnectionError):
        f.apply_async(job_id="y")
    assert recorder.calls == [("failed:ConnectionError", "y")]


def test_every_lifecycle_hook_is_in_the_tables_of_hooks_md() -> None:
    from pathlib import Path

    from tinyq_core._lifecycle import LIFECYCLE_HOOKS

    text = (Path(__file__).resolve().parents[1] / "docs" / "hooks.md").read_text()
    missing = [name for name in LIFECYCLE_HOOKS if f"| `{name}` |" not in text]
    assert not missing
