"""The broker contract suite on tinyq-redis: against a real redis-server, and fakeredis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import fakeredis
import pytest
import redis

from tinyq_core import Broker
from tinyq_core.testing import BrokerContract
from tinyq_redis import RedisBroker

from redis_server import RedisServer


class TestRedisBroker(BrokerContract):
    # One server, no replica to confirm a durable enqueue; it waits durable_timeout (0.2 s).
    durable_enqueue_refused = True

    @pytest.fixture
    def broker(self, redis_server: RedisServer) -> Iterator[RedisBroker]:
        # A prefix per test keeps tests apart on the shared server.
        broker = RedisBroker(f"{redis_server.url}?visibility_timeout=0.5&durable_timeout=0.2",
                             prefix=f"t{uuid.uuid4().hex[:8]}")
        yield broker
        broker.close()

    @pytest.fixture
    def refusing_broker(
        self, broker: RedisBroker, redis_server: RedisServer
    ) -> Iterator[tuple[Broker, Callable[[], None]]]:
        """The shared server limited to 512 kB more than it uses now (about 2,000 small jobs;
        the policy is noeviction); a test runs alone on its pytest-xdist worker's server."""
        client = redis.Redis.from_url(redis_server.url)
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used + 512 * 1024)
        try:
            yield broker, lambda: client.config_set("maxmemory", 0)
        finally:
            client.config_set("maxmemory", 0)
            client.close()

    @pytest.fixture
    def second_broker(
        self, broker: RedisBroker, redis_server: RedisServer
    ) -> Iterator[RedisBroker]:
        """What another process would open: its own connections, the same server and prefix."""
        second = RedisBroker(f"{redis_server.url}?visibility_timeout=0.5", prefix=broker.prefix)
        yield second
        second.close()


class TestRedisBrokerOnFakeredis(BrokerContract):
    """Fast and serverless; fakeredis runs the Lua scripts through lupa."""

    durable_enqueue_refused = True  # fakeredis has no replicas (nor WAIT)

    @pytest.fixture
    def server(self) -> fakeredis.FakeServer:
        return fakeredis.FakeServer(version=(7, 0))

    # In process, so a shorter lease than a server's: the suite sleeps in multiples of it.
    @pytest.fixture
    def broker(self, server: fakeredis.FakeServer) -> Iterator[RedisBroker]:
        broker = RedisBroker("redis://?visibility_timeout=0.25",
                             client=fakeredis.FakeRedis(server=server))
        yield broker
        broker.close()

    @pytest.fixture
    def second_broker(self, server: fakeredis.FakeServer) -> Iterator[RedisBroker]:
        second = RedisBroker("redis://?visibility_timeout=0.25",
                             client=fakeredis.FakeRedis(server=server))
        yield second
        second.close()
