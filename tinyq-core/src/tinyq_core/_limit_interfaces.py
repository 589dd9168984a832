"""The optional tier that keeps limits shared by every worker: rate limits (a booked slot in
time per job) and concurrency limits (leased slots). A broker offers it by inheriting
:class:`JobLimits` beside :class:`Broker`; a worker whose application has a limited task
refuses to start on a broker without it (a limit silently not kept is worse than none).

Each method is one atomic step in the broker (a Lua script on Redis, a transaction on SQLite,
a lock in memory), on the broker's clock, and kept per queue (on a Redis Cluster, in the
queue's slot). Each is safe to send twice: a client that re-sends a call after a timeout
must not book or count twice.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence


class JobLimits(abc.ABC):
    """Rate limits as a scheduler (GCRA: each booking gets the next free slot of its key)
    and concurrency limits as leases (a dead worker's slot frees when its lease expires).

    A broker that sets ``wakes_slot_waiters`` keeps, per concurrency key, the jobs that found
    no free slot (``acquire_slots(..., wait=True)``) in the order they first waited, and a slot
    freed by ``release_slot(s)`` makes the first of them that is delayed (given back to wait)
    due now: a waiting job then starts within a moment of a slot freeing, and waiting jobs are
    not fetched over and over. Without it a worker gives such jobs back for a short random
    delay instead."""

    wakes_slot_waiters: bool = False

    @abc.abstractmethod
    def book_rate(
        self, queue: str, key: str, interval: float, burst: int, token: str
    ) -> float:
        """Book the next free slot of rate limit ``key`` (of ``queue``), which hands out one
        slot per ``interval`` seconds, ``burst`` of them at once after a quiet spell, in the
        order asked for; return the seconds until the slot booked (0: now). ``token`` names
        the booking: the same token asked again (a re-sent call) returns the slot it got,
        without booking another, for at least a minute after that slot."""

    @abc.abstractmethod
    def acquire_slot(
        self, queue: str, key: str, limit: int, holder: str, lease_seconds: float
    ) -> bool:
        """Take one of the ``limit`` slots of concurrency limit ``key`` (of ``queue``) for
        ``holder``, leased for ``lease_seconds``; False when all are held by others (slots
        whose lease expired are free). A holder that holds one already keeps it, its lease
        renewed from now (renewal is this same call), and gets True."""

    @abc.abstractmethod
    def release_slot(self, queue: str, key: str, holder: str) -> None:
        """Free the slot of ``key`` (of ``queue``) held by ``holder``, if any; with
        ``wakes_slot_waiters``, then wake the first waiter of ``key`` whose job is delayed
        (it is no longer a waiter). A waiter on the way whose job is not delayed keeps its
        place if it first waited a few seconds ago at most (its give-back is on its way;
        tinyq's brokers allow 10 s), and is dropped otherwise. A call that freed nothing (a
        re-sent one) wakes nobody."""

    def book_rates(self, bookings: Sequence[tuple[str, str, float, int, str]]) -> list[float]:
        """:meth:`book_rate` for each ``(queue, key, interval, burst, token)``, in order (so
        jobs of one key keep their order): a worker books for a whole fetched batch at once.
        A broker that can do it in one round trip overrides this."""
        return [self.book_rate(*booking) for booking in bookings]

    def acquire_slots(self, requests: Sequence[tuple[str, str, int, str, float]], *,
                      wait: bool = False) -> list[bool]:
        """:meth:`acquire_slot` for each ``(queue, key, limit, holder, lease_seconds)``, in
        order: a worker asks for a whole fetched batch, and renews its held slots, at once.
        ``wait`` (with ``wakes_slot_waiters``): a holder that gets no slot becomes a waiter
        of its key, keeping its place if it is one already; one that gets a slot is no longer
        a waiter. A broker that can do it in one round trip overrides this."""
        return [self.acquire_slot(*request) for request in requests]

    def release_slots(self, slots: Sequence[tuple[str, str, str]]) -> None:
        """:meth:`release_slot` for each ``(queue, key, holder)``: a worker frees the slots of
        the jobs finished since its last report at once. A broker that can do it in one round
        trip overrides this."""
        for queue, key, holder in slots:
            self.release_slot(queue, key, holder)
