"""Small frozen value types passed between the application, the worker and brokers.

Every field is part of the plugin interface: a broker reads and builds these, and nothing else
of tinyq's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs

JobStatus = Literal[
    "queued", "scheduled", "started", "succeeded", "failed", "cancelled", "expired", "unknown"
]
WorkerState = Literal["running", "stopping"]


@attrs.frozen
class Message:
    """An encoded job as a broker stores it.

    * ``id``: the job id, unique among the jobs waiting or leased in ``queue``; enqueueing a
      message whose id is still waiting or leased there adds nothing (a producer's retry), nor
      does one whose result is still stored in the broker's own result backend (a replay).
    * ``queue``: the queue's name.
    * ``body``: opaque bytes (serialized and, when configured, signed by the application);
      a broker stores and returns them unchanged and never decodes them.
    * ``due``: a Unix time before which the message must not be delivered; ``None``: now.
    """

    id: str
    queue: str
    body: bytes
    due: float | None = None


@attrs.frozen
class Delivery:
    """A message handed to one consumer under a lease.

    * ``message``: the message as enqueued (or as last given back with a new body).
    * ``attempts``: the deliveries of this message so far, 1 the first time; a lease that
      expired and was recovered counts on, a message given back with ``nack`` starts again.
    * ``receipt``: the broker's own handle for this delivery (a stream entry id, a row id, a
      lease key). The worker passes it back unchanged in ``renew``, ``ack``, ``nack`` and
      ``dead_letter``; its type is the broker's business. Two deliveries of one message (a
      lease that expired and was handed out again) have different receipts, so a late report
      about the old one must not touch the new one.
    """

    message: Message
    attempts: int
    receipt: Any = None

    @property
    def id(self) -> str:
        """The message's (job's) id."""
        return self.message.id

    @property
    def queue(self) -> str:
        """The message's queue."""
        return self.message.queue


@attrs.frozen
class DeadLetter:
    """A message removed from its queue for good, with why.

    * ``message``: the message as it was last delivered.
    * ``reason``: the short cause (``"failed after 3 attempt(s)"``, ``"unknown task ..."``).
    * ``error``: the job's exception as ``"Type: message"``, when it raised.
    * ``attempts``: the delivery count of its last delivery.
    * ``failed_at``: the Unix time it was dead-lettered.
    """

    message: Message
    reason: str
    error: str = ""
    attempts: int = 0
    failed_at: float = 0.0


@attrs.frozen
class Result:
    """The outcome of a job as the result backend stores it.

    * ``job_id``: the job's id; a later result for the same id replaces the earlier one,
      except that a failure never replaces a success: a job that ran twice (its lease was
      lost while it ran) and failed the second time keeps its success.
    * ``body``: opaque bytes, encoded and signed like a message body.
    * ``queue``: the job's queue (a backend may keep results beside their queue).
    * ``ok``: whether it holds a success: what a backend needs to know of the body when it
      stores it. A result read back may say True for a failure (the body tells); two results
      compare equal without it.
    """

    job_id: str
    body: bytes
    queue: str = "default"
    ok: bool = attrs.field(default=True, eq=False)


@attrs.frozen(kw_only=True)
class SettleRequest:
    """A worker's report and its next fetch, for :meth:`Broker.settle_and_reserve`.

    In this order: store ``results`` (each expiring ``result_ttl`` seconds later) in the
    broker's own result backend, then acknowledge ``acks``, then reserve up to ``count``
    messages from ``queues`` (none when ``count`` is 0), blocking up to ``timeout`` seconds
    while none is due. A result is stored before its job's ack, so a failure between the
    two never loses a result: the job stays leased and runs again. ``on_lost``, when given,
    is called with the acks whose lease was lost (as :meth:`Broker.ack` returns them).
    """

    results: Sequence[Result] = ()
    result_ttl: float = 24 * 3600.0
    acks: Sequence[Delivery] = ()
    queues: Sequence[str] = ()
    count: int = 0
    timeout: float = 0.0
    on_lost: Callable[[Sequence[Delivery]], None] | None = None


@attrs.frozen(repr=False)
class Job:
    """A decoded job: which task to run with which arguments.

    ``retries`` counts the retries already made; ``eta`` is the Unix time it was due, if delayed;
    ``enqueued_at`` the Unix time the producer sent it (kept across retries; ``None`` for a
    message from a version that did not record it); ``headers`` the message headers, str to
    str, set by the producer (``apply_async(headers=...)`` and ``tinyq_before_enqueue`` hooks).
    ``expires``: the Unix time after which the job must not start (``None``: never).
    ``unique_key``: the lock a unique job holds (``None``: not unique); ``unique_for``: the
    seconds it keeps the lock after it finished. ``workflow``: what to do when the job
    finished, when it is a member of a chain, group or chord (see _workflow_plan.py).
    """

    id: str
    task_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    queue: str = "default"
    retries: int = 0
    eta: float | None = None
    enqueued_at: float | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    expires: float | None = None
    unique_key: str | None = None
    unique_for: float = 0.0
    workflow: dict[str, Any] | None = None

    def __repr__(self) -> str:
        # The original tinyq's log format: "<Job: id: ..., task_name: app.add>".
        return f"<Job: id: {self.id}, task_name: {self.task_name}>"


@attrs.frozen
class QueueCounts:
    """The messages of one queue by where they are: ``ready`` (due, waiting for a worker),
    ``scheduled`` (delayed, not due yet), ``leased`` (held by a worker: running or
    prefetched), ``dead`` (dead letters)."""

    ready: int
    scheduled: int
    leased: int
    dead: int


@attrs.frozen
class CurrentJob:
    """A job a worker is running: its id, task name, queue, and when it started (Unix time)."""

    id: str
    task: str
    queue: str
    started_at: float


@attrs.frozen
class WorkerInfo:
    """What a worker process says of itself in the worker registry, at each heartbeat.

    * ``id``: unique per worker process (``host:pid:random``).
    * ``state``: ``"running"``, or ``"stopping"`` once a warm shutdown began.
    * ``processed`` / ``failed``: jobs finished since start, and how many of those failed.
    * ``started_at`` / ``heartbeat_at``: Unix times of start and of this record.
    * ``cancelled`` / ``expired``: of the jobs processed, those cancelled (before they
      started, or running) and those that expired before they could start.
    * ``async_concurrency`` / ``async_running``: the slots of the worker's event loop
      (``async_concurrency``; 0: it has none, async jobs take threads) and how many of them
      run a job now. ``concurrency`` counts the sync threads only.
    """

    id: str
    host: str
    pid: int
    version: str
    queues: tuple[str, ...]
    concurrency: int
    started_at: float
    heartbeat_at: float
    processed: int = 0
    failed: int = 0
    state: WorkerState = "running"
    jobs: tuple[CurrentJob, ...] = ()
    cancelled: int = 0
    expired: int = 0
    async_concurrency: int = 0
    async_running: int = 0
