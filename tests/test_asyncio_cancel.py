"""``await h.aprogress()``, ``await h.acancel()`` and ``await app.acancel(job_id)``: the
blocking ``progress()``/``cancel()``'s outcomes, on the memory broker and a real
redis-server (their native async tier: on the loop's thread, no thread hop) and on SQLite
(through the client's threads)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinyq_core import Application, current_job
from tinyq_core._progress import ProgressStore
from tinyq_memory import MemoryBroker, drain
from tinyq_sqlite import SqliteBroker

from redis_server import RedisServer
from support.waiting import wait_until
from support.worker_thread import running_worker


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Application]:
    if request.param == "memory":
        broker: Any = MemoryBroker()
    elif request.param == "sqlite":
        broker = SqliteBroker(f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        broker = f"{server.url}?prefix=c{uuid.uuid4().hex[:8]}&visibility_timeout=5"
    application = Application(broker)

    @application.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    yield application
    application.close()


def _native(app: Application) -> bool:
    return not isinstance(app.broker, SqliteBroker)


def test_acancel_of_a_waiting_job_removes_it_as_cancel_does(app: Application) -> None:
    async def main() -> tuple[str, str, str, str]:
        h = await app.tasks["add"].adelay(1, 2)
        first = await h.acancel()
        again = await h.acancel()  # its "cancelled" outcome stands
        unknown = await app.acancel("no-such-job", "default")
        status = await h.astatus()
        await app.aclose()
        return first, again, unknown, status

    assert asyncio.run(main()) == ("cancelled", "finished", "unknown", "cancelled")
    assert drain(app) == 0  # it never runs


def test_app_acancel_finds_the_queue_and_checks_grace(app: Application) -> None:
    h = app.tasks["add"].delay(1, 2)

    async def main() -> str:
        with pytest.raises(ValueError, match="grace"):
            await app.acancel(h.id, grace=-1)
        outcome = await app.acancel(h.id)  # no queue given: looked for
        await app.aclose()
        return outcome

    assert asyncio.run(main()) == "cancelled"
    assert h.status() == "cancelled"


def test_aprogress_and_acancel_of_a_running_job(app: Application) -> None:
    release = threading.Event()

    @app.task(name="busy")
    def busy() -> str:
        current_job().set_progress({"done": 3})
        wait_until(lambda: current_job().cancelled or release.is_set(), timeout=20,
                   message="the cancel")
        return "cancelled" if current_job().cancelled else "released"

    h = busy.delay()
    with running_worker(app, concurrency=1):
        wait_until(lambda: h.progress() is not None, message="the progress")

        async def main() -> tuple[Any, Any, str]:
            progress = await h.aprogress()
            before = await app.job(h.id).aprogress()  # a handle that must find its queue
            outcome = await h.acancel(grace=5)
            await app.aclose()
            return progress, before, outcome

        progress, found, outcome = asyncio.run(main())
        try:
            assert outcome == "cancelling"
            assert progress == found == {"done": 3} == h.progress()
            assert h.result(15) == "cancelled"  # the worker saw the flag
        finally:
            release.set()


def test_aprogress_before_any_is_none(app: Application) -> None:
    h = app.tasks["add"].delay(1, 2)

    async def main() -> Any:
        value = await h.aprogress()
        await app.aclose()
        return value

    assert asyncio.run(main()) is None


def test_native_tiers_cancel_and_read_progress_on_the_loop_thread(
    app: Application, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory and Redis: no thread hop (asyncio.to_thread, the client's threads), no blocking
    broker call: the memory broker's lock is taken on the loop's own thread, Redis is asked
    through the loop's redis.asyncio pool."""
    if not _native(app):
        pytest.skip("SQLite goes through threads")
    h = app.tasks["add"].delay(1, 2)
    codec = app._producer.codec
    ProgressStore(codec, app.broker.result_backend(), 60).write(h.id, "default", 0.5)
    threads: list[threading.Thread] = []
    if isinstance(app.broker, MemoryBroker):
        broker_cancel = app.broker.cancel

        def noting_cancel(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread())
            return broker_cancel(*args, **kwargs)

        monkeypatch.setattr(app.broker, "cancel", noting_cancel)
    else:
        monkeypatch.setattr(app.broker, "cancel", _refuse)
        monkeypatch.setattr(app.broker.result_backend(), "progress", _refuse)

    async def main() -> tuple[Any, str]:
        monkeypatch.setattr(asyncio, "to_thread", _refuse)
        progress = await h.aprogress()
        outcome = await h.acancel()
        await app.aclose()
        return progress, outcome

    assert asyncio.run(main()) == (0.5, "cancelled")
    if isinstance(app.broker, MemoryBroker):
        assert threads == [threading.main_thread()]


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a blocking call from the event loop")
