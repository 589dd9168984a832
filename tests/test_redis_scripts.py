"""Lua scripts on a server that does not know them (new, or restarted): the worker loads
them before its first pipelined read, so no settle waits behind a blocking read to be sent
again (NOSCRIPT), which delayed the first result after a start by the read's block time."""

from __future__ import annotations

import uuid

import redis

from tinyq_core import Application

from redis_server import RedisServer
from support.worker_thread import running_worker


def noscript_errors(client: redis.Redis) -> int:
    stats = client.info("errorstats")
    return int(stats.get("errorstat_NOSCRIPT", {}).get("count", 0))


def test_a_worker_meets_no_noscript_on_a_server_without_its_scripts(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    app = Application(f"{redis_server.url}?prefix=s{uuid.uuid4().hex[:8]}")

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    handles = [add.delay(i, 1) for i in range(5)]
    client.script_flush()  # as a new or restarted server
    before = noscript_errors(client)
    with running_worker(app, burst=True):
        assert [h.result(timeout=10) for h in handles] == [i + 1 for i in range(5)]
    assert noscript_errors(client) == before
