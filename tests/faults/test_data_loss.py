"""Redis loses its data under a long-lived producer (a restart without persistence, FLUSHALL):
the consumer groups the broker remembers creating are gone, and every admin call must create
them again instead of failing with NOGROUP from then on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tinyq_core import Application

from redis_server import RedisServer

pytestmark = pytest.mark.redis  # its own server, which the marker rules do not see


@pytest.fixture
def volatile_server() -> Iterator[RedisServer]:
    """A redis-server of its own without persistence: a restart loses everything."""
    server = RedisServer(appendonly=False).start()
    yield server
    server.close()


@pytest.mark.parametrize("loss", ["restart", "flushall"])
def test_a_producer_recovers_after_redis_loses_its_data(
    volatile_server: RedisServer, loss: str
) -> None:
    app = Application(f"{volatile_server.url}?prefix=loss")

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    lost = add.delay(1, 2)
    assert lost.status() == "queued"  # the broker has created and cached the group
    assert app.broker.size("default") == 1
    if loss == "restart":
        volatile_server.restart()
    else:
        redis.Redis.from_url(volatile_server.url).flushall()

    h = add.delay(2, 3)  # XADD makes the stream again, without the group
    assert h.status() == "queued"
    assert lost.status() == "unknown"
    assert app.broker.size("default") == 1
    assert app.broker.count_leased("default") == 0
    assert app.broker.purge("default") == 1
    assert app.broker.size("default") == 0
    for call in ("size", "count_leased", "purge"):  # each alone, on a group lost again
        redis.Redis.from_url(volatile_server.url).flushall()
        assert getattr(app.broker, call)("default") == 0
    after = add.delay(3, 4)
    app.worker(concurrency=1).run(burst=True)
    assert after.result(timeout=5) == 7
    assert after.status() == "succeeded"
