"""Rate and concurrency limits on the Redis broker (:class:`JobLimits`). A mixin of
:class:`~tinyq_redis.RedisBroker`: each limit's keys live under its queue's hash tag (one
Cluster slot), each call is one script on the server's clock (book_rate.lua,
acquire_slot.lua), and every key expires by itself once its limit is idle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tinyq_core.plugin import JobLimits

from ._connection import translate_errors
from ._scripts import Lua

BOOK_RATE = Lua("book_rate.lua")
ACQUIRE_SLOT = Lua("acquire_slot.lua")
BOOKINGS_KEPT_MS = 60_000  # a booking is remembered this long after its slot (a re-send)


def limit_key(prefix: str, queue: str, kind: str, key: str) -> str:
    """A limit's key: beside the queue's keys, in its slot."""
    return f"{{{prefix}:{queue}}}:{kind}:{key}"


class RedisJobLimits(JobLimits):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        prefix: str

    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        keys = (limit_key(self.prefix, queue, "rate", key),
                limit_key(self.prefix, queue, "rate-booked", key))
        args = (repr(interval * 1000), max(1, int(burst)), token, BOOKINGS_KEPT_MS)
        with translate_errors(self.where):
            wait_ms = BOOK_RATE(self.client, keys, args)
        return max(0.0, float(wait_ms) / 1000)

    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        with translate_errors(self.where):
            held = ACQUIRE_SLOT(self.client, (limit_key(self.prefix, queue, "slots", key),),
                                (limit, holder, max(1, int(lease_seconds * 1000))))
        return bool(int(held))

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        with translate_errors(self.where):
            self.client.zrem(limit_key(self.prefix, queue, "slots", key), holder)

    def release_slots(self, slots: Sequence[tuple[str, str, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)  # one round trip (ZREM is idempotent)
        for queue, key, holder in slots:
            pipe.zrem(limit_key(self.prefix, queue, "slots", key), holder)
        with translate_errors(self.where):
            pipe.execute()
