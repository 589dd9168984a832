"""Unique jobs on the producer side: the lock key a job holds, and enqueueing through the
broker's :class:`UniqueLocks` tier, one job at a time (each is one atomic check-and-enqueue).

A job is unique when its task has ``unique=True`` or ``apply_async`` got ``unique_for`` or
``unique_key``. Its key is ``unique_key`` when given (the user's key is the lock, shared by
every task that names it), else the task's name and a hash of its arguments (docs/tasks.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._control_interfaces import UniqueLocks
from ._errors import ConfigurationError, EnqueueError, SerializationError
from ._handle import JobHandle
from ._interfaces import Broker
from ._runtime_interfaces import Serializer
from ._types import Job, Message

if TYPE_CHECKING:
    from ._producer import Producer
    from ._task import Task, TaskOptions

# How long a lock's record lives whatever its job does: only a bound on garbage (a lock is
# held while its job is in the queue, checked by the broker), so far beyond any job's life.
LOCK_TTL = 30 * 24 * 3600.0


def arguments_digest(args: Sequence[Any], kwargs: Mapping[str, Any],
                     serializer: Serializer) -> str:
    """sha256 (hex) of a canonical encoding of the arguments: equal arguments, equal digest,
    whatever the order of ``kwargs``. JSON with sorted keys when the values are JSON (so a
    tuple equals a list, and a dict is equal whatever its key order); else the app's
    serializer over the keyword arguments sorted by name (equal when encoded alike)."""
    try:
        data = b"j" + json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError):  # not JSON (a set, bytes, an object), or NaN
        data = b"s" + serializer.dumps([list(args), sorted(kwargs.items())])
    return hashlib.sha256(data).hexdigest()


def unique_job(
    job: Job,
    options: TaskOptions,
    serializer: Serializer,
    unique_for: float | None = None,
    unique_key: str | None = None,
) -> Job:
    """``job`` with its lock key and keep time when it is unique (its task's ``unique``, or
    ``unique_for`` / ``unique_key`` given), else ``job`` as it is."""
    if job.unique_key is not None or not (
            options.unique or unique_for is not None or unique_key is not None):
        return job
    keep = options.unique_for if unique_for is None else unique_for
    if not (isinstance(keep, (int, float)) and math.isfinite(keep) and keep >= 0):
        raise ValueError(f"unique_for must be a finite number of seconds >= 0, not {keep!r}")
    if unique_key is not None:
        if not isinstance(unique_key, str) or not unique_key:
            raise ValueError(f"unique_key must be a non-empty string, not {unique_key!r:.60}")
        key = unique_key
    else:
        try:
            digest = arguments_digest(job.args, job.kwargs, serializer)
        except SerializationError as exc:
            raise SerializationError(f"cannot enqueue {job.task_name}: its arguments cannot "
                                     f"make a unique key: {exc}") from None
        key = f"{job.task_name}:{digest}"
    return attrs.evolve(job, unique_key=key, unique_for=float(keep))


def unique_jobs(jobs: list[Job], tasks: Mapping[str, Task[Any, Any]],
                serializer: Serializer) -> list[Job]:
    """``jobs`` with a lock key on each job of a ``unique=True`` task (``map()``, ``send()``
    and ``delay()`` come here without one)."""
    out = jobs
    for index, job in enumerate(jobs):
        task = tasks.get(job.task_name)
        if task is not None and task.options.unique and job.unique_key is None:
            if out is jobs:
                out = list(jobs)
            out[index] = unique_job(job, task.options, serializer)
    return out


def enqueue_unique(
    producer: Producer, jobs: Sequence[Job], messages: Sequence[Message], durable: bool
) -> list[JobHandle[Any]]:
    """Enqueue ``jobs`` (encoded as ``messages``) one at a time: a unique job through the
    broker's lock, whose holder's handle stands for it when the lock is held. The
    ``tinyq_after_enqueue`` hooks hear of the jobs that went in only."""
    broker = producer.backends.broker
    if not isinstance(broker, UniqueLocks):
        raise ConfigurationError(
            f"cannot enqueue {jobs[0].task_name} as a unique job: the broker "
            f"{type(broker).__name__} cannot keep unique locks; use the memory, Redis or "
            "SQLite broker, or drop unique=True / unique_for / unique_key")
    handles: list[JobHandle[Any]] = []
    for index, (job, message) in enumerate(zip(jobs, messages, strict=True)):
        try:
            holder = _send_one(broker, job, message, durable)
        except EnqueueError as exc:
            producer.announce_enqueued(jobs[index:], (), exc)
            rest: list[JobHandle[Any]] = [JobHandle(producer, j.id, j.queue)
                                          for j in jobs[index:]]
            raise EnqueueError(
                f"{len(handles):,} of {len(jobs):,} unique job(s) enqueued: "
                f"{str(exc).rstrip('.')}; its .retry() enqueues the others (a job whose lock "
                "is held meanwhile is answered with the holder's handle)",
                enqueued=handles, not_enqueued=rest,
                retry=_retry(producer, handles, jobs[index:], messages[index:], durable),
            ) from exc
        except BaseException as exc:
            producer.announce_enqueued(jobs[index:], (), exc)
            raise
        handles.append(JobHandle(producer, holder, job.queue))
        # A job answered by its lock's holder gets tinyq_after_enqueue too, as one whose
        # job_id is still queued does: the broker has it (the holder), and a plugin that
        # opened something in before_enqueue closes it there.
        producer.announce_enqueued([job], (job.id,))
    return handles


def _retry(
    producer: Producer, done: list[JobHandle[Any]], jobs: Sequence[Job],
    messages: Sequence[Message], durable: bool,
) -> Callable[[], list[JobHandle[Any]]]:
    """An EnqueueError's retry: the rest of the call again, with the handles already got."""
    return lambda: done + enqueue_unique(producer, jobs, messages, durable)


def _send_one(broker: Broker, job: Job, message: Message, durable: bool) -> str:
    """The id of the job that holds ``job``'s lock now (``job.id`` when it went in)."""
    if job.unique_key is None:  # a plain job sent in the same call as unique ones
        broker.enqueue([message], durable=durable)
        return job.id
    assert isinstance(broker, UniqueLocks)
    ttl = LOCK_TTL + job.unique_for + max(0.0, (job.eta or 0.0) - time.time())
    return broker.enqueue_unique(message, job.unique_key, ttl, durable=durable)
