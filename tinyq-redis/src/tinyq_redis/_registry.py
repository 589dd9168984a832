"""The worker registry on Redis. All keys share the hash tag ``{prefix}`` (one Cluster slot,
apart from every queue's ``{prefix:queue}``): ``{prefix}:worker:<id>`` holds a worker's record
and expires with it (``SET ... PX``); ``{prefix}:workers`` is the index, a sorted set of
worker ids scored by when their record expires (ms), so listing needs no ``KEYS``/``SCAN``.
A mixin of :class:`~tinyq_redis.RedisBroker`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tinyq_core.plugin import WorkerRegistry

from ._connection import translate_errors


class RedisRegistry(WorkerRegistry):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        prefix: str

        def _pipeline(self) -> Any: ...

    @property
    def workers_key(self) -> str:
        return f"{{{self.prefix}}}:workers"

    def worker_key(self, worker_id: str) -> str:
        return f"{{{self.prefix}}}:worker:{worker_id}"

    def record_worker(self, worker_id: str, record: bytes, ttl: float) -> None:
        ttl_ms = max(1, int(ttl * 1000))
        pipe = self._pipeline()  # one round trip per heartbeat
        pipe.set(self.worker_key(worker_id), record, px=ttl_ms)
        pipe.zadd(self.workers_key, {worker_id: int(time.time() * 1000) + ttl_ms})
        with translate_errors(self.where):
            pipe.execute()

    def remove_worker(self, worker_id: str) -> None:
        pipe = self._pipeline()
        pipe.delete(self.worker_key(worker_id))
        pipe.zrem(self.workers_key, worker_id)
        with translate_errors(self.where):
            pipe.execute()

    def worker_records(self) -> list[bytes]:
        pipe = self._pipeline()
        # Index members past their expiry (by this clock) go; the records' own TTLs (by the
        # server's clock) are what counts: a member whose record is gone is dropped below.
        pipe.zremrangebyscore(self.workers_key, "-inf", int(time.time() * 1000))
        pipe.zrange(self.workers_key, 0, -1)
        with translate_errors(self.where):
            _, members = pipe.execute()
            if not members:
                return []
            ids = [m.decode() if isinstance(m, bytes) else m for m in members]
            records = self.client.mget([self.worker_key(i) for i in ids])
            gone = [i for i, record in zip(ids, records, strict=True) if record is None]
            if gone:
                self.client.zrem(self.workers_key, *gone)
        return [bytes(r) for r in records if r is not None]
