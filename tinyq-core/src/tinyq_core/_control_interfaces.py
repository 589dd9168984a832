"""The optional tiers that put jobs in time and under control: periodic schedules' ticks
(:class:`ScheduleRecords`), cancellation (:class:`CancelRequests`) and unique jobs
(:class:`UniqueLocks`). A broker offers one by inheriting it beside :class:`Broker`; the core
checks with ``isinstance`` and says "not supported by this broker" without it.

Each method is one atomic step in the broker (a Lua script on Redis, a transaction on SQLite,
a lock in memory): two workers or producers racing never both win. Every record is kept per
queue, so on a Redis Cluster it lives in the queue's slot, beside the messages it guards.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Literal

from ._types import Message, Result

CancelState = Literal["removed", "flagged", "absent"]


class ScheduleRecords(abc.ABC):
    """The last tick enqueued for each periodic schedule: every worker runs a scheduler, and
    this record is how exactly one of them enqueues each tick, and how a scheduler starting
    after an outage knows which ticks were missed."""

    @abc.abstractmethod
    def claim_tick(
        self,
        queue: str,
        schedule: str,
        tick: float,
        message: Message | None = None,
        *,
        durable: bool = False,
    ) -> bool:
        """In one atomic step: when no tick is recorded for ``schedule`` (a name, unique in
        ``queue``) or the recorded one is earlier than ``tick`` (a Unix time, kept to the
        millisecond), record ``tick`` and enqueue ``message`` (when given: a message of
        ``queue``, due now) as :meth:`Broker.enqueue` would, and return True. Otherwise
        change nothing and return False. The record does not expire (it is the schedule's
        state, like a queue name). ``durable`` as for :meth:`Broker.enqueue`: a claim won
        returns once a replica has the record and the message."""

    @abc.abstractmethod
    def last_ticks(self, queue: str, schedules: Sequence[str]) -> dict[str, float]:
        """The recorded tick of each of ``schedules`` (of ``queue``) that has one."""


class CancelRequests(abc.ABC):
    """Cancelling jobs: a waiting job is deleted at once; a leased one is flagged, and the
    worker holding it asks for its held jobs' flags about once a second."""

    @abc.abstractmethod
    def cancel(
        self,
        job_id: str,
        queue: str,
        *,
        grace: float | None,
        ttl: float,
        result: Result | None = None,
        result_ttl: float = 0.0,
    ) -> CancelState:
        """Cancel job ``job_id`` of ``queue``, in one atomic step:

        * its message is waiting or delayed: delete it, store ``result`` (when given, the
          job's "cancelled" outcome) in this broker's own result backend, expiring
          ``result_ttl`` seconds later; return ``"removed"``.
        * it is leased: leave it, and record a cancel request with ``grace`` (seconds the
          job has to stop by itself before the worker interrupts it; None: it is never
          interrupted), kept ``ttl`` seconds (replacing an earlier request); return
          ``"flagged"``.
        * neither: change nothing; return ``"absent"``."""

    @abc.abstractmethod
    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> dict[str, float | None]:
        """Those of ``job_ids`` (of ``queue``) with a cancel request, each with its grace.
        One round trip: a worker asks about once a second for every job it holds."""

    @abc.abstractmethod
    def forget_cancel_request(self, queue: str, job_id: str) -> None:
        """Delete the cancel request of ``job_id``, if any (the worker settled the job)."""


class UniqueLocks(abc.ABC):
    """Unique jobs: a lock per key, held by one job id while that job's message is waiting,
    delayed or leased (the broker checks, so a lock never outlives its job by a crash, a
    purge or a dead letter), and optionally for a while after it finished."""

    @abc.abstractmethod
    def enqueue_unique(
        self, message: Message, key: str, ttl: float, *, durable: bool = False
    ) -> str:
        """In one atomic step: when lock ``key`` (of ``message.queue``) is held, enqueue
        nothing and return the id of the job holding it. It is held while its job's message
        is waiting, delayed or leased in the queue, or until the time set by
        :meth:`release_unique`. Otherwise take it for ``message.id``, enqueue ``message`` as
        :meth:`Broker.enqueue` would, and return ``message.id``. ``ttl``: the lock's record
        is deleted that many seconds after it was taken whatever its job does (a bound on
        garbage, far beyond any job's life). ``durable`` as for :meth:`Broker.enqueue`."""

    @abc.abstractmethod
    def release_unique(self, queue: str, key: str, owner: str, keep_for: float = 0.0) -> None:
        """When lock ``key`` of ``queue`` is held by job ``owner`` (which finished): keep it
        ``keep_for`` more seconds, then release it (0: release it now). Held by another job,
        or not at all: change nothing."""
