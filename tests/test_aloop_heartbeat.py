"""A worker's async slots in its heartbeat (WorkerInfo): how many its event loop has and
how many run now, beside the sync threads; shown by ``tinyq info`` and its ``--json``."""

from __future__ import annotations

import asyncio
import json
import threading

import attrs

from tinyq_core import Application
from tinyq_core._cli.info import as_json, render
from tinyq_core._registry import decode_worker, encode_worker
from tinyq_memory import MemoryBroker

from support.waiting import wait_until
from support.worker_thread import running_worker

BEAT = 0.1


def test_a_worker_reports_its_async_slots_and_those_running() -> None:
    app = Application(MemoryBroker(visibility_timeout=5))
    release = threading.Event()

    @app.task(name="t.nap")
    async def nap() -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)

    @app.task(name="t.add")
    def add(m: int, n: int) -> int:
        return m + n

    handles = [nap.delay() for _ in range(3)]
    with running_worker(app, concurrency=2, async_concurrency=50, heartbeat_interval=BEAT):
        wait_until(lambda: [w.async_running for w in app.workers()] == [3],
                   message="three async jobs in the record")
        [info] = app.workers()
        assert (info.concurrency, info.async_concurrency, len(info.jobs)) == (2, 50, 3)
        text = render(app, [], [info])
        assert "ASYNC" in text and " 3/50 " in text, text
        document = as_json(app, [], [info])["workers"][0]
        assert (document["async_concurrency"], document["async_running"]) == (50, 3)
        release.set()
        for h in handles:
            h.result(5)
        wait_until(lambda: [w.async_running for w in app.workers()] == [0],
                   message="no async job running")


def test_a_worker_without_an_event_loop_reports_no_async_slots() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.add")
    def add(m: int, n: int) -> int:
        return m + n

    with running_worker(app, heartbeat_interval=BEAT):
        wait_until(lambda: len(app.workers()) == 1, message="the record")
        [info] = app.workers()
    assert (info.async_concurrency, info.async_running) == (0, 0)
    assert " -  " in render(app, [], [info]).splitlines()[-1] + " "


def test_async_slots_survive_the_record_and_an_older_record_has_none() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.nap")
    async def nap() -> None:
        await asyncio.sleep(0)

    with running_worker(app, async_concurrency=7, heartbeat_interval=BEAT):
        wait_until(lambda: len(app.workers()) == 1, message="the record")
        [info] = app.workers()
    assert decode_worker(encode_worker(info)) == info
    assert info.async_concurrency == 7
    older = json.loads(encode_worker(info))
    del older["async_concurrency"], older["async_running"]
    assert decode_worker(json.dumps(older).encode()) == attrs.evolve(
        info, async_concurrency=0, async_running=0)
