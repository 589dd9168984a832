"""The producer side of an application: jobs encoded, checked and enqueued; outcomes read.

Tasks and job handles talk to this object only, not to the Application.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._backends import Backends
from ._codec import Codec, Outcome
from ._errors import ConfigurationError, EnqueueError, MessageTooLarge, SerializationError
from ._handle import JobHandle
from ._interfaces import BrokerAdmin
from ._types import Job, JobStatus, Message

if TYPE_CHECKING:
    from ._task import Task


class Producer:
    """Enqueues jobs and reads their outcomes for one application.

    ``tasks`` is the application's registry (read, never changed here); ``known_queues``
    returns the queues the application knows of (declared ones and its tasks' queues)."""

    def __init__(
        self,
        backends: Backends,
        codec: Codec,
        tasks: Mapping[str, Task[Any, Any]],
        known_queues: Callable[[], set[str]],
        *,
        max_message_size: int | None,
        strict_queues: bool,
        durable_enqueue: bool,
    ) -> None:
        self.backends = backends
        self.codec = codec
        self._tasks = tasks
        self.known_queues = known_queues
        self.max_message_size = max_message_size
        self.strict_queues = strict_queues
        self.durable_enqueue = durable_enqueue

    def enqueue(self, jobs: Sequence[Job], durable: bool | None = None) -> list[JobHandle[Any]]:
        """Encode ``jobs`` and add them in one broker operation; one handle each."""
        known = self.known_queues() if self.strict_queues else set()
        now = time.time()
        messages = [self._message(job if job.enqueued_at is not None else
                                  attrs.evolve(job, enqueued_at=now), known) for job in jobs]
        handles: list[JobHandle[Any]] = [JobHandle(self, job.id, job.queue) for job in jobs]
        return self._send(messages, self.durable_enqueue if durable is None else durable,
                          handles)

    def _send(
        self, pending: list[Message], durable: bool, handles: list[JobHandle[Any]]
    ) -> list[JobHandle[Any]]:
        """Enqueue ``pending``, the messages of the call of ``handles`` not in yet (all at
        first), and return ``handles``. A refusal becomes an EnqueueError that sends the rest
        again: ``pending`` shrinks in place, so a retry of any error of the call (an older one
        too) sends only what is still missing."""
        try:
            if durable:
                self.backends.broker.enqueue(pending, durable=True)
            else:
                self.backends.broker.enqueue(pending)
        except EnqueueError as exc:
            went_in = set(exc.enqueued_ids)
            pending[:] = [m for m in pending if m.id not in went_in]
            missing = {m.id for m in pending}
            enqueued = [h for h in handles if h.id not in missing]
            total = len(handles)
            these = "the error's .enqueued has their handles; " if enqueued else ""
            raise EnqueueError(
                f"{len(enqueued):,} of {total:,} job{'s' if total != 1 else ''} enqueued: "
                f"{str(exc).rstrip('.')}; {these}once that is fixed, its .retry() enqueues "
                f"the other {len(missing):,} under their job ids (a queued job is never added "
                "twice)",
                enqueued=enqueued,
                not_enqueued=[h for h in handles if h.id in missing],
                retry=lambda: self._send(pending, durable, handles),
            ) from exc
        pending.clear()
        return handles

    def _message(self, job: Job, known: set[str]) -> Message:
        if self.strict_queues and job.queue not in known:
            raise ConfigurationError(
                f"cannot enqueue {job.task_name}: unknown queue {job.queue!r} (known: "
                f"{', '.join(sorted(known))}); declare it with Application(queues=[...])"
            )
        try:
            body = self.codec.encode_job(job)
        except SerializationError as exc:
            task = self._tasks.get(job.task_name)
            text = (task.explain_serialization_error(job, exc) if task is not None
                    else f"cannot enqueue {job.task_name}: {exc}")
            raise SerializationError(text) from None
        limit = self.max_message_size
        if limit is not None and len(body) > limit:
            raise MessageTooLarge(
                f"cannot enqueue {job.task_name}: the job is {len(body):,} bytes encoded, "
                f"more than max_message_size ({limit:,}); pass large data by reference "
                "(a path, a URL, a key) or raise the limit"
            )
        return Message(job.id, job.queue, body, job.eta)

    def outcome(self, job_id: str, timeout: float | None, queue: str) -> Outcome | None:
        """The job's outcome, waiting up to ``timeout`` seconds; None when there is none."""
        result = self.backends.results.get(job_id, timeout, queue)
        return None if result is None else self.codec.decode_result(result.body, job_id)

    def status(self, job_id: str, queue: str) -> JobStatus:
        outcome = self.outcome(job_id, 0, queue)
        if outcome is not None:
            return "succeeded" if outcome.ok else "failed"
        broker = self.backends.broker
        return broker.status(job_id, queue) if isinstance(broker, BrokerAdmin) else "unknown"

    def find_queue(self, job_id: str) -> str | None:
        """The queue that holds ``job_id`` or its result, if any: among the application's
        known queues, and every queue the broker knows of (when it has the admin tier), so
        a job sent by another application to a queue this one never names is found too."""
        broker = self.backends.broker
        names = self.known_queues()
        if isinstance(broker, BrokerAdmin):
            names |= set(broker.queues())
        for queue in sorted(names):
            if isinstance(broker, BrokerAdmin) and broker.status(job_id, queue) != "unknown":
                return queue
            if self.backends.results.get(job_id, 0, queue) is not None:
                return queue
        return None
