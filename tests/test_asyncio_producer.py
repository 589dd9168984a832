"""The awaitable producer API on the memory broker (its native async tier), and through
threads on SQLite and on a Redis broker given a client instance (fakeredis): every awaitable
method, the errors of the blocking API, a cancelled wait, and a loop never blocked. Hooks,
result backends and loops: test_asyncio_clients.py; a real redis-server:
test_asyncio_redis.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import fakeredis
import pytest

from tinyq_core import Application, JobFailed, SerializationError
from tinyq_core.plugin import AsyncBroker, ThreadedAsyncClient
from tinyq_memory import MemoryBroker, drain
from tinyq_redis import RedisBroker
from tinyq_sqlite import SqliteBroker

from support.loop_lag import lag_of

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture(params=["memory", "sqlite", "fakeredis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Application]:
    if request.param == "memory":
        broker: Any = MemoryBroker()
    elif request.param == "sqlite":
        broker = SqliteBroker(f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        broker = RedisBroker(client=fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    application = Application(broker)

    @application.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    @application.task(name="fail")
    def fail() -> None:
        raise ValueError("no")

    @application.task(name="once", unique=True)
    def once(x: int) -> int:
        return x

    yield application
    application.close()


def test_each_broker_gets_its_native_tier_or_the_threads(app: Application) -> None:
    async def main() -> type:
        await app.tasks["add"].adelay(1, 2)
        kind = type(app._producer.aio._loop_clients().broker_client)
        await app.aclose()
        return kind

    kind = run(main())
    assert isinstance(app.broker, AsyncBroker) == (type(app.broker) is not SqliteBroker)
    if isinstance(app.broker, MemoryBroker):
        assert kind.__name__ == "MemoryAsyncClient"
    else:  # SQLite has no async tier; a Redis broker given a client cannot copy it
        assert kind is ThreadedAsyncClient


def test_every_awaitable_method_enqueues_and_reads_like_the_blocking_one(
    app: Application,
) -> None:
    add = app.tasks["add"]

    async def enqueue() -> list[Any]:
        h = await add.adelay(1, 2)
        status = await h.astatus()
        applied = await add.aapply_async((3, 4), job_id="chosen", headers={"who": "me"})
        later = await add.aapply_async((5, 6), countdown=3600)
        mapped = await add.amap([(1, 1), (2, 2)])
        sent = await app.asend("add", 7, 8)
        statuses = [await later.astatus(), await app.job("nope").astatus()]
        await app.aclose()
        return [h, status, applied, later, mapped, sent, statuses]

    h, status, applied, _later, mapped, sent, statuses = run(enqueue())
    assert status == "queued"
    assert applied.id == "chosen"
    assert statuses == ["scheduled", "unknown"]
    assert drain(app, advance_clock=False) == 5

    async def read() -> list[Any]:
        values = [await x.aresult(timeout=1) for x in (h, applied, *mapped, sent)]
        values.append(await app.job("chosen").aresult(timeout=1))  # queue looked up
        values.append(await h.astatus())
        await app.aclose()
        return values

    assert run(read()) == [3, 7, 2, 4, 15, 7, "succeeded"]


def test_a_result_wait_wakes_when_a_worker_stores_it(app: Application) -> None:
    async def main() -> tuple[int, float]:
        h = await app.tasks["add"].adelay(20, 22)
        worker = threading.Timer(0.3, drain, (app,))
        worker.start()
        start = time.monotonic()
        value = await h.aresult(timeout=10)
        waited = time.monotonic() - start
        worker.join()
        await app.aclose()
        return value, waited

    value, waited = run(main())
    assert value == 42
    assert waited < 9  # woken by the store, not by the timeout


def test_errors_are_the_blocking_apis(app: Application) -> None:
    add, fail = app.tasks["add"], app.tasks["fail"]

    async def main() -> None:
        with pytest.raises(SerializationError, match="argument 'n'"):
            await add.adelay(1, object())
        with pytest.raises(ValueError, match="countdown or eta"):
            await add.aapply_async((1, 2), countdown=1, eta=time.time())
        h = await fail.adelay()
        with pytest.raises(TimeoutError, match=r"did not finish within 0\.1"):
            await h.aresult(timeout=0.1)
        await asyncio.to_thread(drain, app)
        with pytest.raises(JobFailed, match="ValueError: no"):
            await h.aresult(timeout=1)
        assert await h.astatus() == "failed"
        await app.aclose()

    run(main())


def test_a_unique_job_is_answered_by_its_holder(app: Application) -> None:
    once = app.tasks["once"]

    async def main() -> tuple[str, str]:
        first = await once.adelay(1)
        second = await once.aapply_async((1,))
        await app.aclose()
        return first.id, second.id

    first, second = run(main())
    assert first == second
    assert drain(app) == 1


def test_a_cancelled_wait_leaves_the_client_usable(app: Application) -> None:
    async def main() -> int:
        h = await app.tasks["add"].adelay(2, 3)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(h.aresult(), 0.2)
        after = await app.tasks["add"].adelay(3, 4)
        await asyncio.to_thread(drain, app)
        value: int = await after.aresult(timeout=5) + await h.aresult(timeout=5)
        await app.aclose()
        return value

    assert run(main()) == 12


def test_the_loop_is_never_blocked_by_a_wait_or_by_a_thousand_enqueues(
    app: Application,
) -> None:
    """A correctness property, asserted loosely: tinyq keeps the loop from its other tasks
    well under 10 ms on an idle machine; the bound here (50 ms) leaves room for a loaded
    one. A blocking result() would show the whole 1 s wait."""
    add = app.tasks["add"]

    async def main() -> list[float]:
        h = await add.adelay(0, 0)

        async def body() -> None:
            with pytest.raises(TimeoutError):
                await h.aresult(timeout=1)
            for i in range(1000):
                await add.adelay(i, i)

        worsts = await lag_of(body)
        await app.aclose()
        return worsts

    worsts = run(main())
    assert min(worsts) < 0.05, f"the loop was blocked {[round(w * 1000) for w in worsts]} ms"
    assert drain(app) == 1 + 1000 * len(worsts)
