"""The broker contract suite on tinyq-redis: against a real redis-server, and fakeredis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import fakeredis
import pytest

from tinyq_core.testing import BrokerContract
from tinyq_redis import RedisBroker

from redis_server import RedisServer


class TestRedisBroker(BrokerContract):
    @pytest.fixture
    def broker(self, redis_server: RedisServer) -> Iterator[RedisBroker]:
        # A prefix per test keeps tests apart on the shared server.
        broker = RedisBroker(f"{redis_server.url}?visibility_timeout=0.5",
                             prefix=f"t{uuid.uuid4().hex[:8]}")
        yield broker
        broker.close()


class TestRedisBrokerOnFakeredis(BrokerContract):
    """Fast and serverless; fakeredis runs the Lua scripts through lupa."""

    @pytest.fixture
    def broker(self) -> Iterator[RedisBroker]:
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))
        broker = RedisBroker("redis://?visibility_timeout=0.5", client=client)
        yield broker
        broker.close()
