"""Rate and concurrency limits on the Redis broker (:class:`JobLimits`). A mixin of
:class:`~tinyq_redis.RedisBroker`: each limit's keys live under its queue's hash tag (one
Cluster slot), each call is one script on the server's clock (book_rate.lua,
acquire_slot.lua, release_slot.lua: the last one wakes a waiter by making its delayed job due
now), and every key expires by itself once its limit is idle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tinyq_core.plugin import JobLimits

from ._connection import translate_errors
from ._keys import Keys
from ._scripts import Lua, execute

BOOK_RATE = Lua("book_rate.lua")
ACQUIRE_SLOT = Lua("acquire_slot.lua")
RELEASE_SLOT = Lua("release_slot.lua")
BOOKINGS_KEPT_MS = 60_000  # a booking is remembered this long after its slot (a re-send)
WAITER_GRACE = 10.0  # seconds a waiter found without a delayed job keeps its place
WAITERS_KEPT_MS = 3_600_000  # an idle key's waiters (jobs that died waiting) are forgotten


def limit_key(prefix: str, queue: str, kind: str, key: str) -> str:
    """A limit's key: beside the queue's keys, in its slot."""
    return f"{{{prefix}:{queue}}}:{kind}:{key}"


class RedisJobLimits(JobLimits):
    wakes_slot_waiters = True

    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        prefix: str

        def keys(self, queue: str) -> Keys: ...

    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        return self.book_rates([(queue, key, interval, burst, token)])[0]

    def book_rates(self, bookings: Sequence[tuple[str, str, float, int, str]]) -> list[float]:
        pipe = self.client.pipeline(transaction=False)  # one round trip, scripts in order
        for queue, key, interval, burst, token in bookings:
            BOOK_RATE.queue(pipe, (limit_key(self.prefix, queue, "rate", key),
                                   limit_key(self.prefix, queue, "rate-booked", key)),
                            (repr(interval * 1000), max(1, int(burst)), token,
                             BOOKINGS_KEPT_MS))
        with translate_errors(self.where):
            waits_ms = execute(self.client, pipe)
        return [max(0.0, float(wait_ms) / 1000) for wait_ms in waits_ms]

    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        return self.acquire_slots([(queue, key, limit, holder, lease_seconds)])[0]

    def acquire_slots(self, requests: Sequence[tuple[str, str, int, str, float]], *,
                      wait: bool = False) -> list[bool]:
        pipe = self.client.pipeline(transaction=False)
        for queue, key, limit, holder, lease_seconds in requests:
            ACQUIRE_SLOT.queue(pipe, (limit_key(self.prefix, queue, "slots", key),
                                      limit_key(self.prefix, queue, "waiters", key)),
                               (limit, holder, max(1, int(lease_seconds * 1000)),
                                int(wait), WAITERS_KEPT_MS))
        with translate_errors(self.where):
            replies = execute(self.client, pipe)
        return [bool(int(held)) for held in replies]

    def release_slot(self, queue: str, key: str, holder: str) -> None:
        self.release_slots([(queue, key, holder)])

    def release_slots(self, slots: Sequence[tuple[str, str, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)  # one round trip; each is idempotent
        for queue, key, holder in slots:
            keys = self.keys(queue)
            RELEASE_SLOT.queue(pipe, (limit_key(self.prefix, queue, "slots", key),
                                      limit_key(self.prefix, queue, "waiters", key),
                                      keys.delayed, keys.wake),
                               (holder, int(WAITER_GRACE * 1000)))
        with translate_errors(self.where):
            execute(self.client, pipe)
