"""The awaitable API around the broker: hooks and an awaitable retry, result backends of the
application's own, brokers without the async tier, one client per event loop, and the
example of docs/asyncio.md."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from test_contract_tiers import RequiredOnlyBroker

from tinyq_core import Application, ConfigurationError, EnqueueError
from tinyq_core.plugin import Job, ThreadedAsyncClient, hookimpl
from tinyq_memory import FakeClock, MemoryBroker, MemoryResultBackend, drain
from tinyq_sqlite import SqliteBroker

from support.worker_thread import running_worker

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class EnqueueRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
        headers["traced"] = "yes"

    @hookimpl
    def tinyq_after_enqueue(self, job: Job) -> None:
        self.calls.append(("after", job.id))

    @hookimpl
    def tinyq_enqueue_failed(self, job: Job, error: BaseException) -> None:
        self.calls.append(("failed:" + type(error).__name__, job.id))


def test_hooks_run_and_a_refused_batch_retries_awaitably() -> None:
    broker = MemoryBroker()
    recorder = EnqueueRecorder()
    app = Application(broker, plugins=[recorder])
    seen: list[str] = []

    @app.task()
    def f(x: int) -> int:
        from tinyq_core import current_job
        seen.append(current_job().headers["traced"])
        return x

    async def main() -> list[int]:
        broker.set_capacity(2)
        with pytest.raises(EnqueueError) as info:
            await f.amap(range(4), job_ids=["a", "b", "c", "d"])
        assert [h.id for h in info.value.enqueued] == ["a", "b"]
        assert recorder.calls == [("after", "a"), ("after", "b"),
                                  ("failed:EnqueueError", "c"), ("failed:EnqueueError", "d")]
        recorder.calls.clear()
        broker.set_capacity(None)
        handles = await info.value.aretry()
        assert recorder.calls == [("after", "c"), ("after", "d")]
        await asyncio.to_thread(drain, app)
        values = [await h.aresult(timeout=1) for h in handles]
        await app.aclose()
        return values

    assert run(main()) == [0, 1, 2, 3]
    assert seen == ["yes"] * 4


def test_a_result_backend_of_its_own_is_waited_on_through_threads() -> None:
    results = MemoryResultBackend()
    app = Application(MemoryBroker(), result_backend=results)

    @app.task()
    def double(x: int) -> int:
        return 2 * x

    async def main() -> tuple[int, Any]:
        h = await double.adelay(21)
        threading.Timer(0.2, drain, (app,)).start()
        value = await h.aresult(timeout=5)
        kind = type(app._producer.aio._loop_clients().results)
        await app.aclose()
        return value, kind

    assert run(main()) == (42, ThreadedAsyncClient)


def test_each_event_loop_gets_its_own_client_and_aclose_ends_its_threads(
    tmp_path: Path,
) -> None:
    app = Application(SqliteBroker(f"sqlite:///{tmp_path / 'jobs.db'}"))

    @app.task()
    def nop() -> None: ...

    async def client_of_loop() -> Any:
        await nop.adelay()
        client = app._producer.aio._loop_clients().broker_client
        await app.aclose()
        return client

    before = {t.name for t in threading.enumerate()}
    first, second = run(client_of_loop()), run(client_of_loop())
    assert first is not second
    assert not [t for t in threading.enumerate()
                if t.name.startswith("tinyq-async") and t.name not in before]
    app.close()


class NoResults(MemoryBroker):
    def result_backend(self) -> Any:
        raise ConfigurationError("no result backend")


class RequiredOnlyNoResults(RequiredOnlyBroker):
    """A third-party broker: the required tier only, no async tier, no result backend."""

    def result_backend(self) -> Any:
        raise ConfigurationError("no result backend")


@pytest.mark.parametrize("kind", [NoResults, RequiredOnlyNoResults])
def test_a_broker_without_a_result_backend_of_its_own_uses_the_apps(kind: type) -> None:
    results = MemoryResultBackend()
    broker = kind() if kind is NoResults else kind(FakeClock())
    app = Application(broker, result_backend=results)

    @app.task()
    def double(x: int) -> int:
        return 2 * x

    async def main() -> tuple[str, int, str]:
        h = await double.adelay(4)
        status = await h.astatus()  # "unknown" without the admin tier
        await asyncio.to_thread(drain, app)
        value: int = await h.aresult(timeout=1)
        done = await h.astatus()
        await app.aclose()
        return status, value, done

    status, value, done = run(main())
    assert (value, done) == (8, "succeeded")
    assert status == ("queued" if kind is NoResults else "unknown")


def test_switching_brokers_closes_the_old_brokers_client_on_the_loop() -> None:
    app = Application(MemoryBroker())

    @app.task()
    def nop() -> None: ...

    async def main() -> tuple[bool, int]:
        await nop.adelay()
        first = app._producer.aio._loop_clients().broker_client
        closed: list[bool] = []

        async def aclose() -> None:
            closed.append(True)

        first.aclose = aclose  # type: ignore[method-assign]
        app.use_broker(MemoryBroker())
        await nop.adelay()
        await asyncio.sleep(0.01)
        second = app._producer.aio._loop_clients().broker_client
        await app.aclose()
        return second is not first, len(closed)

    assert run(main()) == (True, 1)


def test_the_first_example_of_asyncio_md_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_docs_examples import doc_block

    monkeypatch.setenv("TINYQ_URL", "memory://")  # overrides the example's redis://
    block = doc_block("asyncio.md", "import asyncio\n\nfrom tinyq_core import Application")
    assert block.endswith("asyncio.run(main())\n")
    namespace: dict[str, Any] = {"__name__": "asyncio_md"}
    exec(block.removesuffix("asyncio.run(main())\n"), namespace)
    with running_worker(namespace["app"]):
        asyncio.run(namespace["main"]())
    status, value = capsys.readouterr().out.split()
    assert status in ("queued", "started", "succeeded") and value == "3"


def test_loops_that_ended_without_aclose_are_let_go() -> None:
    """``asyncio.run(task.adelay(...))`` per call, as a sync view might do: each call's loop
    gets a client; the next call drops those of loops already closed. (The clients here hold
    their loop, as redis.asyncio's connections do: a weak key alone would not let go.)"""
    from tinyq_memory._async import MemoryAsyncClient

    class LoopHoldingClient(MemoryAsyncClient):
        def __init__(self, broker: MemoryBroker) -> None:
            super().__init__(broker)
            self.loop = asyncio.get_running_loop()

    class LoopHoldingBroker(MemoryBroker):
        def async_client(self) -> LoopHoldingClient:
            return LoopHoldingClient(self)

    app = Application(LoopHoldingBroker())

    @app.task()
    def nop() -> None: ...

    for _ in range(5):
        run(nop.adelay())
    assert len(app._producer.aio._clients) == 1  # the last loop's only
    assert drain(app) == 5


def test_redis_uris_choose_a_native_pool_or_the_threads() -> None:
    """One server: a redis.asyncio pool of the same options (nothing connects yet); Sentinel
    (and Cluster, which connects as it is made) and a broker given a client: threads."""
    import fakeredis
    from redis.asyncio import Redis as AsyncRedis

    from tinyq_redis import RedisBroker
    from tinyq_redis._async import RedisAsyncClient

    async def kinds() -> list[Any]:
        native = RedisBroker("redis://127.0.0.1:1/3?socket_timeout=2&prefix=p").async_client()
        assert isinstance(native, RedisAsyncClient) and isinstance(native.client, AsyncRedis)
        kwargs = native.client.connection_pool.connection_kwargs
        assert (kwargs["port"], kwargs["db"], kwargs["socket_timeout"]) == (1, 3, 2.0)
        sentinel = RedisBroker("redis+sentinel://127.0.0.1:1/svc").async_client()
        given = RedisBroker(client=fakeredis.FakeRedis()).async_client()
        found = [type(native), type(sentinel), type(given)]
        for client in (native, sentinel, given):
            await client.aclose()
        return found

    assert run(kinds()) == [RedisAsyncClient, ThreadedAsyncClient, ThreadedAsyncClient]


def test_a_refused_unique_job_retries_awaitably_too() -> None:
    """Unique jobs go through the blocking tier on a thread; their EnqueueError still has
    an ``aretry()``, and so has the error of a retry refused again."""
    broker = MemoryBroker()
    app = Application(broker)

    @app.task(unique=True)
    def once(x: int) -> int:
        return x

    async def main() -> list[int]:
        await once.adelay(0)
        broker.set_capacity(1)
        with pytest.raises(EnqueueError) as info:
            await once.amap([(1,), (2,)])
        with pytest.raises(EnqueueError) as again:
            await info.value.aretry()
        broker.set_capacity(None)
        handles = await again.value.aretry()
        await asyncio.to_thread(drain, app)
        values = [await h.aresult(timeout=1) for h in handles]
        await app.aclose()
        return values

    assert run(main()) == [1, 2]
