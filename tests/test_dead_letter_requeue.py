"""Requeueing dead letters (hardening issue, item 12): a requeued job is waiting again, with
its retries back, and a producer that saw its failure finds the dead letter to requeue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tinyq_core import Application, JobFailed
from tinyq_memory import MemoryBroker

from redis_server import RedisServer
from support.worker_thread import running_worker


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def app(request: pytest.FixtureRequest) -> Iterator[Application]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        application = Application(f"{server.url}?prefix=rq{uuid.uuid4().hex[:8]}")
    else:
        application = Application(MemoryBroker())
    yield application
    application.close()


def test_a_requeued_dead_letter_waits_again_with_its_retries(app: Application) -> None:
    state = {"fail": True, "runs": 0}

    @app.task(name="t.flaky", max_retries=1, retry_backoff=0)
    def flaky() -> str:
        state["runs"] += 1
        if state["fail"]:
            raise ValueError("service down")
        return "ok"

    admin = app.broker
    h = flaky.delay()
    app.worker(concurrency=1).run(burst=True)
    assert state["runs"] == 2  # the run and its one retry
    [dead] = admin.dead_letters("default")  # type: ignore[attr-defined]
    assert dead.reason == "failed after 2 attempt(s)" and h.status() == "failed"

    assert admin.requeue_dead_letters("default") == 1  # type: ignore[attr-defined]
    assert h.status() == "queued"  # not the old failure
    with pytest.raises(TimeoutError):
        h.result(timeout=0)

    app.worker(concurrency=1).run(burst=True)
    assert state["runs"] == 4  # its retry budget came back: two runs again, not one
    [dead] = admin.dead_letters("default")  # type: ignore[attr-defined]
    assert dead.reason == "failed after 2 attempt(s)"

    state["fail"] = False
    assert admin.requeue_dead_letters("default") == 1  # type: ignore[attr-defined]
    app.worker(concurrency=1).run(burst=True)
    assert h.result(timeout=0) == "ok" and h.status() == "succeeded"


def test_a_producer_that_saw_the_failure_finds_the_dead_letter(app: Application) -> None:
    @app.task(name="t.fails")
    def fails(i: int) -> None:
        raise ValueError(i)

    admin = app.broker
    with running_worker(app, concurrency=2):
        for i in range(20):
            h = fails.delay(i)
            with pytest.raises(JobFailed):
                h.result(timeout=10)
            # At once, as an operator's script would: the dead letter is already there.
            assert admin.requeue_dead_letters("default", [h.id]) == 1, i  # type: ignore[attr-defined]
            with pytest.raises(JobFailed):
                h.result(timeout=10)  # it ran again and failed again
