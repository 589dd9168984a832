"""A durable claim on a Redis primary with a replica: it returns once the replica has the
tick's record and its job, so a failover to that replica keeps both (docs/scheduling.md);
without a replica to confirm it raises BrokerError, the tick recorded on the primary."""

from __future__ import annotations

import time

import pytest
import redis

from tinyq_core.plugin import BrokerError, Message
from tinyq_redis import RedisBroker

from redis_server import RedisServer


def test_a_durable_claim_is_on_the_replica_when_it_returns() -> None:
    primary = RedisServer().start()
    replica = RedisServer(extra=()).start()
    broker = RedisBroker(primary.url)
    replica_client = redis.Redis.from_url(replica.url)
    try:
        replica_client.replicaof("127.0.0.1", primary.port)
        deadline = time.monotonic() + 30
        while replica_client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.05)
        message = Message("nightly@1700000000000", "default", b"job")
        assert broker.claim_tick("default", "nightly", 1_700_000_000.0, message, durable=True)
        # No waiting here: WAIT 1 returned, so the replica has applied both writes.
        assert replica_client.hget("{tinyq:default}:ticks", "nightly") == b"1700000000000"
        assert replica_client.hexists("{tinyq:default}:jobs", message.id)
        assert not broker.claim_tick("default", "nightly", 1_700_000_000.0, durable=True)
        replica_client.replicaof("NO", "ONE")  # the primary is alone: no replica confirms
        with pytest.raises(BrokerError, match="no replica"):
            broker.claim_tick("default", "nightly", 1_700_000_060.0, durable=True)
        assert broker.last_ticks("default", ["nightly"]) == {"nightly": 1_700_000_060.0}
    finally:
        broker.close()
        replica_client.close()
        replica.close()
        primary.close()
