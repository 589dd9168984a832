"""Small frozen value types passed between the application, the worker and brokers."""

from __future__ import annotations

from typing import Any, Literal

import attrs

JobStatus = Literal["queued", "scheduled", "started", "succeeded", "failed", "unknown"]


@attrs.frozen
class Message:
    """An encoded job as a broker stores it.

    ``body`` is opaque to the broker (serialized and, when configured, signed by the application).
    ``due`` is a Unix time before which the job must not be delivered; ``None`` means now.
    """

    id: str
    queue: str
    body: bytes
    due: float | None = None


@attrs.frozen
class Delivery:
    """A message handed to one consumer under a lease.

    ``attempts`` counts the deliveries of this message (1 the first time); a message given back
    with ``nack`` starts counting again. ``receipt`` is the broker's own handle for ack and renew.
    """

    message: Message
    attempts: int
    receipt: Any = None

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def queue(self) -> str:
        return self.message.queue


@attrs.frozen
class DeadLetter:
    """A message removed from its queue for good, with why."""

    message: Message
    reason: str
    error: str = ""
    attempts: int = 0
    failed_at: float = 0.0


@attrs.frozen
class Result:
    """The outcome of a job as the result backend stores it; ``body`` is encoded like a message.
    ``queue`` is the job's queue (a backend may keep results beside their queue)."""

    job_id: str
    body: bytes
    queue: str = "default"


@attrs.frozen(repr=False)
class Job:
    """A decoded job: which task to run with which arguments.

    ``retries`` counts the retries already made; ``eta`` is the Unix time it was due, if delayed.
    """

    id: str
    task_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    queue: str = "default"
    retries: int = 0
    eta: float | None = None

    def __repr__(self) -> str:
        # The original tinyq's log format: "<Job: id: ..., task_name: app.add>".
        return f"<Job: id: {self.id}, task_name: {self.task_name}>"
