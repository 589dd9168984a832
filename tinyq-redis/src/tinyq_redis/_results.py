"""Results on Redis: one list key per job holding one item (a failure: its body twice, see
below), with a TTL, beside its queue (``{prefix:queue}:result:<job id>``).

``get`` with a timeout blocks on the server with BRPOPLPUSH from the key to itself, which
returns the item as soon as it is pushed and leaves it in place for other readers (fakeredis
blocks on it too, unlike BLMOVE). Waits longer than the socket timeout are cut into slices.
At maxmemory Redis refuses every blocking pop, even of a list that holds the value: ``get``
then polls with LINDEX every ``OOM_POLL`` seconds instead, so a stored result is still read.
The worker stores results through the broker's settle script, in the same round trip as its
acknowledgements; ``store`` here is for everything else. A failure is stored as its body twice
(see dead_letter.lua), so that a script can tell it from a success and never replace a
success with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import OutOfMemoryError

from tinyq_core.plugin import Result, ResultBackend

from ._connection import translate_errors
from ._keys import Keys
from ._scripts import STORE_FAILURE, execute

OOM_POLL = 0.1  # seconds between reads of a result while Redis refuses blocking pops

def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class RedisResultBackend(ResultBackend):
    def __init__(
        self, client: Any, keys: Callable[[str], Keys], where: str, longest_block: float
    ) -> None:
        self.client = client
        self.keys = keys
        self.where = where
        self._slice = longest_block  # waits longer than this are cut into slices

    def store(self, results: Sequence[Result], ttl: float) -> None:
        if not results:
            return
        pipe = self.client.pipeline(transaction=False)
        ttl_ms = max(1, int(ttl * 1000))
        for result in results:
            key = self.keys(result.queue).result(result.job_id)
            if not result.ok:  # never in place of a success
                STORE_FAILURE.queue(pipe, [key], [ttl_ms, result.body])
                continue
            # RPUSH first: at maxmemory it is refused (a DEL first would still delete the
            # result already there); LTRIM then keeps one result, the last success.
            pipe.rpush(key, result.body)
            pipe.ltrim(key, -1, -1)
            pipe.pexpire(key, ttl_ms)
        with translate_errors(self.where):
            execute(self.client, pipe)

    def store_progress(self, job_id: str, queue: str, body: bytes, ttl: float) -> None:
        with translate_errors(self.where):
            self.client.set(self.keys(queue).progress(job_id), body, px=max(1, int(ttl * 1000)))

    def progress(self, job_id: str, queue: str) -> bytes | None:
        with translate_errors(self.where):
            body = self.client.get(self.keys(queue).progress(job_id))
        return None if body is None else _bytes(body)

    def stored(self, jobs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        if not jobs:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for queue, job_id in jobs:
            pipe.exists(self.keys(queue).result(job_id))
        with translate_errors(self.where):
            found = pipe.execute()
        return {job for job, n in zip(jobs, found, strict=True) if int(n)}

    def get_many(self, jobs: Sequence[tuple[str, str]]) -> list[Result | None]:
        if not jobs:
            return []
        pipe = self.client.pipeline(transaction=False)
        for queue, job_id in jobs:
            pipe.lindex(self.keys(queue).result(job_id), 0)
        with translate_errors(self.where):
            bodies = pipe.execute()
        return [None if body is None else Result(job_id, _bytes(body), queue)
                for (queue, job_id), body in zip(jobs, bodies, strict=True)]

    def get(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        key = self.keys(queue).result(job_id)
        with translate_errors(self.where):
            if timeout is not None and timeout <= 0:
                body = self.client.lindex(key, 0)
                return None if body is None else Result(job_id, _bytes(body), queue)
            deadline = None if timeout is None else time.monotonic() + timeout
            polling = False  # Redis is at maxmemory: it refuses blocking pops
            while True:
                wait = self._slice
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                if polling:
                    body = self.client.lindex(key, 0)
                    if body is None:
                        time.sleep(min(OOM_POLL, wait))
                else:
                    try:
                        # Redis reads a 0 timeout as "forever": never less than a millisecond.
                        body = self.client.brpoplpush(key, key, timeout=max(0.001, wait))
                    except OutOfMemoryError:
                        polling = True
                        continue
                if body is not None:
                    return Result(job_id, _bytes(body), queue)
