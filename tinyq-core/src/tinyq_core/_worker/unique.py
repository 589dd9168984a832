"""Unique jobs on the worker side. A finished job whose lock is kept ``unique_for`` seconds
after it finished tells the broker so just before its outcome is sent, while its message
still holds the lock, so that no other job with its key slips in between. A lock with nothing
to keep frees itself when its message is acknowledged or dead-lettered (the broker checks);
its record is deleted just after, so that finished jobs leave no garbage behind (on Redis a
key per lock, else kept until the lock's ttl, 30 days)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import attrs

from .._control_interfaces import UniqueLocks
from .._interfaces import Broker
from .._types import Job

if TYPE_CHECKING:
    from .policy import Settlement

logger = logging.getLogger("tinyq.worker")

S = TypeVar("S")


@attrs.frozen
class KeptLock:
    """Lock ``key`` of ``queue``, held by job ``owner``, which finished: keep it ``keep_for``
    seconds more (0: delete it)."""

    queue: str
    key: str
    owner: str
    keep_for: float


def keeping_lock(settlement: S, job: Job) -> S:
    """``settlement`` carrying ``job``'s lock, when the job is unique and the settlement
    finishes it (a retry keeps the lock anyway: the message is still in the queue, delayed)."""
    if job.unique_key is None or not hasattr(settlement, "unique"):
        return settlement
    lock = KeptLock(job.queue, job.unique_key, job.id, job.unique_for)
    return attrs.evolve(settlement, unique=lock)  # type: ignore[misc]


def keep_locks(broker: Broker, batch: Sequence[Settlement]) -> None:
    """Before ``batch`` is sent: keep each finished unique job's lock for its ``unique_for``
    from now (a batch sent again keeps them again). A failure is logged, and the lock then
    frees when the job's message is acknowledged: the outcome is what must get through."""
    _release(broker, batch, kept=True)


def drop_locks(broker: Broker, batch: Sequence[Settlement]) -> None:
    """After ``batch`` was sent: delete the lock of each finished unique job that keeps
    nothing (it no longer holds: this is only its record going)."""
    _release(broker, batch, kept=False)


def _release(broker: Broker, batch: Sequence[Settlement], kept: bool) -> None:
    for settlement in batch:
        lock = getattr(settlement, "unique", None)
        if lock is None or (lock.keep_for > 0) is not kept:
            continue
        if not isinstance(broker, UniqueLocks):
            return
        try:
            broker.release_unique(lock.queue, lock.key, lock.owner, lock.keep_for)
        except Exception as exc:
            if kept:
                logger.error("Could not keep the unique lock of job %s (queue %r) for %gs: "
                             "another job with its key may start before then: %s",
                             lock.owner, lock.queue, lock.keep_for, exc)
            else:  # it frees all the same: the record stays until its ttl
                logger.warning("Could not delete the unique lock of finished job %s (queue "
                               "%r): %s", lock.owner, lock.queue, exc)
