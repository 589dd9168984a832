"""Message headers and the running job: ``apply_async(headers=...)`` and producer hooks put
them in the signed envelope; ``current_job()`` gives a task its job; ``set_progress`` is read
by the producer while the job runs (memory, Redis, SQLite)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tinyq_core import (
    Application,
    ConfigurationError,
    RunningJob,
    current_job,
)
from tinyq_core._codec import Codec
from tinyq_core._serializers import JSONSerializer
from tinyq_core.plugin import BadMessage, Job, Result, ResultBackend, hookimpl
from tinyq_memory import FakeClock, MemoryBroker, drain

from redis_server import RedisServer
from support.worker_thread import running_worker


class AddsATraceHeader:
    @hookimpl
    def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
        headers["trace"] = f"t-{job.id[:4]}"


def test_headers_travel_from_producer_hook_and_apply_async_to_the_task(
    tinyq_broker: MemoryBroker,
) -> None:
    app = Application(tinyq_broker, plugins=[AddsATraceHeader()], secret_key="k")
    seen: list[dict[str, str]] = []

    @app.task()
    def job() -> None:
        seen.append(dict(current_job().headers))

    h = job.apply_async(headers={"tenant": "acme"})
    drain(app)
    assert seen == [{"tenant": "acme", "trace": f"t-{h.id[:4]}"}]


def test_no_headers_leave_the_envelope_as_before() -> None:
    codec = Codec(JSONSerializer())
    body = codec.encode_job(Job("j", "t"))
    assert b"headers" not in body
    assert codec.decode_job(body, "default", "j").headers == {}


def test_a_tampered_header_is_refused_with_a_secret_key(
    tinyq_app: Application, tinyq_broker: MemoryBroker
) -> None:
    codec = Codec(JSONSerializer(), "k")
    body = codec.encode_job(Job("j", "t", headers={"role": "user"}))
    tampered = body.replace(b'"user"', b'"root"')
    assert tampered != body
    with pytest.raises(BadMessage, match="bad signature"):
        codec.decode_job(tampered, "default", "j")
    assert codec.decode_job(body, "default", "j").headers == {"role": "user"}


@pytest.mark.parametrize("headers", [{"n": 1}, {"l": ["x"]}, ["a"]])
def test_a_header_that_is_not_str_to_str_is_a_bad_message(headers: Any) -> None:
    payload = {"id": "j", "task": "t", "headers": headers}
    with pytest.raises(BadMessage, match="headers"):
        Codec(JSONSerializer()).decode_job(json.dumps(payload).encode(), "default", "j")


def test_apply_async_refuses_a_header_that_is_not_a_string(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def job() -> None: ...

    with pytest.raises(TypeError, match=r"headers must map str to str: 'n': 1"):
        job.apply_async(headers={"n": 1})  # type: ignore[dict-item]


def test_current_job_in_a_sync_and_an_async_task(
    tinyq_broker: MemoryBroker, tinyq_clock: FakeClock
) -> None:
    app = Application(tinyq_broker)
    seen: list[tuple[Any, ...]] = []

    def note(job: RunningJob) -> None:
        seen.append((job.id, job.task_name, job.queue, job.attempt, job.retries,
                     job.enqueued_at))

    @app.task(name="s", max_retries=1, retry_backoff=0)
    def sync_task() -> None:
        note(current_job())
        if current_job().retries == 0:
            raise ValueError("once more")

    @app.task(name="a", queue="other")
    async def async_task() -> None:
        await asyncio.sleep(0)
        note(current_job())

    before = time.time()
    sync_task.apply_async(job_id="s1")
    async_task.apply_async(job_id="a1")
    after = time.time()
    drain(app)
    assert sorted(s[:5] for s in seen) == [("a1", "a", "other", 1, 0), ("s1", "s", "default", 1, 0),
                                           ("s1", "s", "default", 1, 1)]
    assert all(before <= s[5] <= after for s in seen)  # enqueued_at: kept across the retry


def test_current_job_counts_the_deliveries_of_a_job_whose_worker_died(
    tinyq_app: Application, tinyq_broker: MemoryBroker, tinyq_clock: FakeClock
) -> None:
    attempts: list[int] = []

    @tinyq_app.task()
    def job() -> None:
        attempts.append(current_job().attempt)

    job.delay()
    tinyq_broker.reserve(["default"], 1, 0)  # its worker died
    tinyq_clock.advance(tinyq_broker.visibility_timeout + 1)
    tinyq_broker.recover(["default"])
    drain(tinyq_app)
    assert attempts == [2]


def test_current_job_outside_a_job_says_so() -> None:
    with pytest.raises(RuntimeError, match="outside a job"):
        current_job()


def _progress_app(app: Application) -> tuple[Any, threading.Event, threading.Event]:
    reported, release = threading.Event(), threading.Event()

    @app.task()
    def long_job(steps: int) -> str:
        for step in range(1, steps + 1):
            current_job().set_progress({"done": step, "of": steps})
        reported.set()
        assert release.wait(10)
        return "finished"

    return long_job, reported, release


def check_progress_while_running(app: Application) -> None:
    long_job, reported, release = _progress_app(app)
    h = long_job.delay(3)
    assert h.progress() is None  # before any
    with running_worker(app, concurrency=1, burst=True):
        assert reported.wait(10)
        assert h.progress() == {"done": 3, "of": 3}  # the latest, while it runs
        release.set()
        assert h.result(10) == "finished"


def test_progress_on_memory() -> None:
    check_progress_while_running(Application(MemoryBroker()))


def test_progress_on_redis(redis_server: RedisServer) -> None:
    app = Application(f"{redis_server.url}?prefix=p{uuid.uuid4().hex[:8]}", secret_key="k")
    try:
        check_progress_while_running(app)
    finally:
        app.close()


def test_progress_on_sqlite(tmp_path: Path) -> None:
    app = Application(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        check_progress_while_running(app)
    finally:
        app.close()


def test_progress_that_is_too_large_or_not_json_fails_clearly(
    tinyq_app: Application,
) -> None:
    errors: list[str] = []

    @tinyq_app.task()
    def job() -> None:
        for value in ({"blob": "x" * 70_000}, {"s": {1, 2}}, "half", float("nan")):
            try:
                current_job().set_progress(value)  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))

    job.delay()
    drain(tinyq_app)
    assert len(errors) == 4
    assert "over the limit of 65,536" in errors[0]
    assert "JSON" in errors[1] and "not str" in errors[2] and "finite" in errors[3]


class KeepsNoProgress(ResultBackend):
    def __init__(self) -> None:
        self.results: dict[str, Result] = {}

    def store(self, results: Any, ttl: float) -> None:
        self.results.update((r.job_id, r) for r in results)

    def get(self, job_id: str, timeout: float | None = 0, queue: str = "default") -> Any:
        return self.results.get(job_id)


def test_a_backend_without_progress_says_so(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, result_backend=KeepsNoProgress())
    said: list[str] = []

    @app.task()
    def job() -> None:
        try:
            current_job().set_progress(1)
        except ConfigurationError as exc:
            said.append(str(exc))

    h = job.delay()
    drain(app)
    with pytest.raises(ConfigurationError, match="KeepsNoProgress keeps no job progress"):
        h.progress()
    assert said and "keeps no job progress" in said[0]


def test_progress_is_signed_for_its_job(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, secret_key="k")
    results = app.results
    body = app.codec.encode_progress("a", 5)
    results.store_progress("b", "default", body, 60)  # a's progress copied to b
    assert app.job("a", "default").progress() is None
    with pytest.raises(BadMessage, match="signed for another job"):
        app.job("b", "default").progress()
