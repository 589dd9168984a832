"""The awaitable producer API on a real redis-server, through the broker's async tier (a
redis.asyncio pool per loop, the blocking broker's Lua scripts), with a worker thread."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import redis

from tinyq_core import (
    Application,
    BrokerError,
    BrokerUnavailable,
    EnqueueError,
    JobFailed,
    SerializationError,
)
from tinyq_redis._async import RedisAsyncClient

from redis_server import RedisServer
from support.loop_lag import lag_of
from support.worker_thread import running_worker

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[Application]:
    # A prefix per test keeps tests apart on the shared server.
    application = Application(f"{redis_server.url}?prefix=a{uuid.uuid4().hex[:8]}"
                              "&durable_timeout=0.2")

    @application.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    @application.task(name="slow")
    def slow(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @application.task(name="fail")
    def fail() -> None:
        raise ValueError("no")

    @application.task(name="once", unique=True)
    def once(x: int) -> int:
        return x

    yield application
    application.close()


def test_every_awaitable_method_on_redis(app: Application) -> None:
    add = app.tasks["add"]

    async def main() -> list[Any]:
        assert isinstance(app._producer.aio._loop_clients().broker_client, RedisAsyncClient)
        nowhere = await app.job("nope", "default").astatus()  # before the queue's group
        h = await add.adelay(1, 2)
        queued = await h.astatus()
        applied = await add.aapply_async((3, 4), job_id="chosen", headers={"who": "me"})
        later = await add.aapply_async((5, 6), countdown=0.3)
        scheduled = await later.astatus()
        mapped = await add.amap([(1, 1), (2, 2)])
        sent = await app.asend("add", 7, 8)
        unique = [(await app.tasks["once"].adelay(9)).id for _ in range(2)]
        with running_worker(app, concurrency=2):
            values = [await x.aresult(timeout=5) for x in (h, applied, later, *mapped, sent)]
            values.append(await app.job("chosen").aresult(timeout=5))  # queue looked up
        states = [nowhere, queued, scheduled, await h.astatus()]
        await app.aclose()
        return [values, states, unique[0] == unique[1]]

    values, states, same = run(main())
    assert values == [3, 7, 11, 2, 4, 15, 7]
    assert states == ["unknown", "queued", "scheduled", "succeeded"]
    assert same


def test_errors_on_redis_are_the_blocking_apis(app: Application) -> None:
    async def main() -> None:
        with pytest.raises(SerializationError, match="argument 'n'"):
            await app.tasks["add"].adelay(1, object())
        # One server, no replica: a durable enqueue is not confirmed, as in the blocking API.
        with pytest.raises(BrokerError, match="no replica"):
            await app.tasks["add"].aapply_async((1, 2), durable=True)
        h = await app.tasks["fail"].adelay()
        with running_worker(app):
            with pytest.raises(JobFailed, match="ValueError: no"):
                await h.aresult(timeout=5)
        with pytest.raises(TimeoutError):
            await (await app.tasks["add"].adelay(1, 1)).aresult(timeout=0.2)
        await app.aclose()

    run(main())


def test_a_cancelled_wait_leaves_the_pool_usable(app: Application) -> None:
    """The wait is cut in the middle of a blocking BRPOPLPUSH: the pool must not hand that
    connection out again with the blocked command's late reply still to come."""
    slow, add = app.tasks["slow"], app.tasks["add"]

    async def main() -> list[Any]:
        h = await slow.adelay(0.5)
        with running_worker(app, concurrency=2):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(h.aresult(), 0.1)
            other = await add.adelay(1, 1)
            values = [await other.aresult(timeout=5), await h.aresult(timeout=5),
                      await other.astatus()]
        await app.aclose()
        return values

    assert run(main()) == [2, 0.5, "succeeded"]


def test_the_loop_is_never_blocked_on_redis(app: Application) -> None:
    """Loosely (50 ms, for a loaded machine): tinyq's own share is well under 10 ms."""
    add = app.tasks["add"]

    async def main() -> list[float]:
        h = await add.adelay(0, 0)  # connected, scripts loaded, server checked: then measure

        async def body() -> None:
            with pytest.raises(TimeoutError):
                await h.aresult(timeout=2)
            for i in range(1000):
                await add.adelay(i, i)

        worsts = await lag_of(body)
        await app.aclose()
        return worsts

    worsts = run(main())
    assert min(worsts) < 0.05, f"the loop was blocked {[round(w * 1000) for w in worsts]} ms"
    assert app.broker.size("default") == 1 + 1000 * len(worsts)  # type: ignore[attr-defined]


def test_scripts_forgotten_by_the_server_are_loaded_again(
    app: Application, redis_server: RedisServer
) -> None:
    add = app.tasks["add"]

    async def main() -> int:
        await add.adelay(1, 1)
        redis.Redis.from_url(redis_server.url).script_flush()
        h = await add.adelay(2, 2)  # one script call: NOSCRIPT, loaded, called again
        await add.amap([(3, 3), (4, 4)])  # a pipeline of them
        redis.Redis.from_url(redis_server.url).script_flush()
        await add.amap([(5, 5)])
        with running_worker(app):
            value: int = await h.aresult(timeout=5)
        await app.aclose()
        return value

    assert run(main()) == 4
    assert app.broker.size("default") == 0  # type: ignore[attr-defined]


def test_aclose_closes_the_loops_connections(app: Application, redis_server: RedisServer) -> None:
    name = f"aio-{uuid.uuid4().hex[:6]}"
    app.use_broker(f"{app.broker_uri}&client_name={name}")

    async def main() -> tuple[int, int]:
        await app.tasks["add"].adelay(1, 1)
        await asyncio.sleep(0)
        admin = redis.Redis.from_url(redis_server.url)
        open_ = sum(1 for c in admin.client_list() if c["name"] == name)
        await app.aclose()
        await asyncio.sleep(0.1)
        closed = sum(1 for c in admin.client_list() if c["name"] == name)
        return open_, closed

    open_, closed = run(main())
    # The blocking broker's connection (its server check) stays; the loop's pool goes.
    assert (open_, closed) == (2, 1)


def test_a_batch_refused_at_maxmemory_is_sent_again_by_aretry(
    app: Application, redis_server: RedisServer
) -> None:
    """The shared server limited to 512 kB more than it uses: of 5,000 jobs (5 script calls
    of 1,000) the first calls go in, the rest are refused whole; ``aretry()`` sends those."""
    admin = redis.Redis.from_url(redis_server.url)
    add = app.tasks["add"]

    async def main() -> tuple[int, int, int]:
        await add.adelay(0, 0)  # connected and checked before the limit
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 512 * 1024)
        try:
            with pytest.raises(EnqueueError) as info:
                await add.amap([("x" * 200, i) for i in range(5000)])
        finally:
            admin.config_set("maxmemory", 0)
        went_in = len(info.value.enqueued)
        handles = await info.value.aretry()
        await app.aclose()
        return went_in, len(info.value.not_enqueued), len(handles)

    try:
        went_in, missing, total = run(main())
    finally:
        admin.config_set("maxmemory", 0)
    assert went_in + missing == 5000 and missing > 0 and went_in % 1000 == 0
    assert total == 5000
    assert app.broker.size("default") == 5001  # type: ignore[attr-defined]


def test_the_loops_pool_reconnects_after_a_server_restart(tmp_path: Any) -> None:
    server = RedisServer(appendonly=True).start()
    app = Application(f"{server.url}?prefix=r")

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    async def main() -> int:
        before = await add.adelay(1, 1)
        await asyncio.to_thread(server.restart)
        after = await add.adelay(2, 2)  # the pool's old connection is dead: a new one
        with running_worker(app):
            value: int = await before.aresult(timeout=5) + await after.aresult(timeout=5)
        await app.aclose()
        return value

    try:
        assert run(main()) == 6
    finally:
        app.close()
        server.close()


def test_a_server_that_is_down_raises_broker_unavailable_like_the_blocking_api() -> None:
    server = RedisServer().start()
    app = Application(f"{server.url}?prefix=d")

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    async def main() -> list[str]:
        h = await add.adelay(1, 1)
        server.stop()
        errors = []
        for call in (lambda: add.adelay(1, 2), lambda: h.aresult(timeout=2), h.astatus):
            start = time.monotonic()
            with pytest.raises(BrokerUnavailable, match="unreachable") as info:
                await call()
            assert time.monotonic() - start < 5  # a short, bounded retry, as the sync client
            errors.append(type(info.value).__name__)
        await app.aclose()
        return errors

    try:
        assert run(main()) == ["BrokerUnavailable"] * 3
    finally:
        app.close()
        server.close()
