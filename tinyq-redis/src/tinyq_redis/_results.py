"""Results on Redis: one list key per job holding one item, with a TTL.

``get`` with a timeout blocks on the server with BRPOPLPUSH from the key to itself, which
returns the item as soon as it is pushed and leaves it in place for other readers (fakeredis
blocks on it too, unlike BLMOVE). Waits longer than the socket timeout are cut into slices.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from tinyq_core import Result, ResultBackend

from ._connection import translate_errors


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class RedisResultBackend(ResultBackend):
    def __init__(self, client: redis.Redis, prefix: str, where: str) -> None:
        self.client = client
        self.prefix = prefix
        self.where = where
        socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout") or 5.0
        self._slice = max(0.1, float(socket_timeout) - 1.0)

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:result:{job_id}"

    def store(self, results: Sequence[Result], ttl: float) -> None:
        if not results:
            return
        pipe = self.client.pipeline(transaction=False)
        self.add_store(pipe, results, ttl)
        with translate_errors(self.where):
            pipe.execute()

    def add_store(self, pipe: redis.client.Pipeline, results: Sequence[Result], ttl: float) -> None:
        """Queue the commands that store ``results`` on ``pipe`` (the broker's, to share its
        round trip)."""
        ttl_ms = max(1, int(ttl * 1000))
        for result in results:
            key = self.key(result.job_id)
            pipe.delete(key)  # a job that ran twice keeps one result, the last
            pipe.rpush(key, result.body)
            pipe.pexpire(key, ttl_ms)

    def get(self, job_id: str, timeout: float | None = 0) -> Result | None:
        key = self.key(job_id)
        with translate_errors(self.where):
            if timeout is not None and timeout <= 0:
                body = self.client.lindex(key, 0)
                return None if body is None else Result(job_id, _bytes(body))
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                wait = self._slice
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                # Redis reads a 0 timeout as "forever": never pass less than a millisecond.
                body = self.client.brpoplpush(key, key, timeout=max(0.001, wait))
                if body is not None:
                    return Result(job_id, _bytes(body))
