"""tinyq on a Redis Cluster of three primaries, started for this module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tinyq_core.testing import BrokerContract
from tinyq_redis import RedisBroker

from redis_server import RedisClusterServers


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers().start()
    yield servers
    servers.close()


class TestRedisBrokerOnCluster(BrokerContract):
    @pytest.fixture
    def broker(self, cluster: RedisClusterServers) -> Iterator[RedisBroker]:
        broker = RedisBroker(f"{cluster.url}?visibility_timeout=0.5",
                             prefix=f"t{uuid.uuid4().hex[:8]}")
        yield broker
        broker.close()
