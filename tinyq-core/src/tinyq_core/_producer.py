"""The producer side of an application: jobs encoded, checked and enqueued; outcomes read.

Tasks and job handles talk to this object only, not to the Application.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._async_producer import AsyncProducer
from ._backends import Backends
from ._cancelling import CancelOutcome, cancel_job
from ._codec import Codec, Outcome
from ._errors import ConfigurationError, EnqueueError, MessageTooLarge, SerializationError
from ._handle import JobHandle
from ._interfaces import BrokerAdmin
from ._progress import ProgressStore
from ._task import checked_headers
from ._types import Job, JobStatus, Message
from ._unique import enqueue_unique, unique_jobs

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
        result_ttl: float = 24 * 3600.0,
    ) -> None:
        self.result_ttl = result_ttl
        self.backends = backends
        self.codec = codec
        self._tasks = tasks
        self.known_queues = known_queues
        self.max_message_size = max_message_size
        self.strict_queues = strict_queues
        self.durable_enqueue = durable_enqueue
        self.hooks = backends.registry.hooks
        self.aio = AsyncProducer(self)  # the awaitable API's side (_async_producer.py)

    def enqueue(self, jobs: Sequence[Job], durable: bool | None = None, *,
                plan_checked: bool = False) -> list[JobHandle[Any]]:
        """Encode ``jobs`` and add them in one broker operation; one handle each.
        ``plan_checked``: a workflow's follow-up jobs (_worker/followups.py): their queues
        were checked by the producer that started it, their ids are fixed by its plan."""
        jobs, messages = self.prepare(jobs, plan_checked=plan_checked)
        if any(job.unique_key is not None for job in jobs):  # one lock each: see _unique.py
            return enqueue_unique(self, jobs, messages,
                                  self.durable_enqueue if durable is None else durable)
        handles: list[JobHandle[Any]] = [JobHandle(self, job.id, job.queue) for job in jobs]
        return self._send(messages, self.durable_enqueue if durable is None else durable,
                          handles, jobs)

    def prepare(self, jobs: Sequence[Job], *, plan_checked: bool = False
                ) -> tuple[list[Job], list[Message]]:
        """``jobs`` stamped, locked when unique, with the hooks' headers, and their messages
        (checked and encoded): what :meth:`enqueue` and ``aenqueue`` send."""
        strict = self.strict_queues and not plan_checked
        known = self.known_queues() if strict else None
        now = time.time()
        jobs = [job if job.enqueued_at is not None else attrs.evolve(job, enqueued_at=now)
                for job in jobs]
        if not plan_checked:  # a follow-up's fixed id is its lock: the plan names it
            jobs = unique_jobs(jobs, self._tasks, self.codec.serializer)
        hooks = self.hooks
        if hooks.before_enqueue:
            jobs = [self._before_enqueue(job) for job in jobs]
        try:
            messages = [self._message(job, known) for job in jobs]
        except BaseException as exc:
            self.announce_enqueued(jobs, (), exc)
            raise
        return jobs, messages

    def announce_enqueued(self, jobs: Sequence[Job], went_in: Container[str],
                  error: BaseException | None = None) -> None:
        """``tinyq_after_enqueue`` for the jobs in ``went_in``; with ``error``,
        ``tinyq_enqueue_failed`` for the others."""
        hooks = self.hooks
        for job in jobs:
            if job.id in went_in:
                if hooks.after_enqueue:
                    hooks.call("tinyq_after_enqueue", job=job)
            elif error is not None and hooks.enqueue_failed:
                hooks.call("tinyq_enqueue_failed", job=job, error=error)

    def message_of(self, job: Job) -> tuple[Job, Message]:
        """``job`` as :meth:`enqueue` would send it (stamped, with the hooks' headers) and its
        message, for a caller that enqueues it through another broker call (a schedule's)."""
        job = job if job.enqueued_at is not None else attrs.evolve(job, enqueued_at=time.time())
        job = self._before_enqueue(job) if self.hooks.before_enqueue else job
        return job, self._message(job, self.known_queues() if self.strict_queues else None)

    def _before_enqueue(self, job: Job) -> Job:
        """``job`` with the headers the ``tinyq_before_enqueue`` hooks added."""
        headers = dict(job.headers)
        self.hooks.call("tinyq_before_enqueue", job=job, headers=headers)
        if headers == job.headers:
            return job
        try:
            return attrs.evolve(job, headers=checked_headers(headers))
        except TypeError as exc:  # a plugin's bug: the job goes without its headers
            self.hooks.failed("tinyq_before_enqueue", "(a plugin)", exc)
            return job

    def _send(
        self, pending: list[Message], durable: bool, handles: list[JobHandle[Any]],
        jobs: list[Job],
    ) -> list[JobHandle[Any]]:
        """Enqueue ``pending``, the messages of the call of ``handles`` (and ``jobs``) not in
        yet (all at first), and return ``handles``. A refusal becomes an EnqueueError that
        sends the rest again: ``pending`` shrinks in place, so a retry of any error of the
        call (an older one too) sends only what is still missing. The enqueue hooks are
        called for the jobs of this attempt, the retry's too."""
        trying = {m.id for m in pending} if self.hooks.after_enqueue or \
            self.hooks.enqueue_failed else set()
        try:
            if durable:
                self.backends.broker.enqueue(pending, durable=True)
            else:
                self.backends.broker.enqueue(pending)
        except EnqueueError as exc:
            raise self.refusal(exc, pending, handles, jobs, trying,
                               lambda: self._send(pending, durable, handles, jobs)) from exc
        except BaseException as exc:
            if trying:
                self.announce_enqueued([j for j in jobs if j.id in trying], (), exc)
            raise
        if trying:
            self.announce_enqueued([j for j in jobs if j.id in trying], trying)
        pending.clear()
        return handles

    def refusal(
        self, exc: EnqueueError, pending: list[Message], handles: list[JobHandle[Any]],
        jobs: list[Job], trying: set[str], retry: Callable[[], list[JobHandle[Any]]],
        aretry: Callable[[], Awaitable[list[JobHandle[Any]]]] | None = None,
    ) -> EnqueueError:
        """The error for the call of ``handles`` whose send of ``pending`` the broker
        refused with ``exc``: the hooks told, ``pending`` shrunk to what is still missing."""
        went_in = set(exc.enqueued_ids)
        if trying:
            self.announce_enqueued([j for j in jobs if j.id in trying], went_in, exc)
        pending[:] = [m for m in pending if m.id not in went_in]
        missing = {m.id for m in pending}
        enqueued = [h for h in handles if h.id not in missing]
        total = len(handles)
        these = "the error's .enqueued has their handles; " if enqueued else ""
        return EnqueueError(
            f"{len(enqueued):,} of {total:,} job{'s' if total != 1 else ''} enqueued: "
            f"{str(exc).rstrip('.')}; {these}once that is fixed, its .retry() enqueues "
            f"the other {len(missing):,} under their job ids (a queued job is never added "
            "twice)",
            enqueued=enqueued,
            not_enqueued=[h for h in handles if h.id in missing],
            retry=retry,
            aretry=aretry,
        )

    def _message(self, job: Job, known: set[str] | None) -> Message:
        """``known``: the queues a strict application knows (None: not checked)."""
        if known is not None and job.queue not in known:
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

    def progress(self, job_id: str, queue: str) -> Any:
        """The latest progress the running job ``job_id`` reported, or None."""
        return ProgressStore(self.codec, self.backends.results, 0).read(job_id, queue)

    def cancel(self, job_id: str, queue: str | None, grace: float | None) -> CancelOutcome:
        return cancel_job(self, job_id, queue, grace)

    def status(self, job_id: str, queue: str) -> JobStatus:
        outcome = self.outcome(job_id, 0, queue)
        if outcome is not None:
            return outcome.status()
        broker = self.backends.broker
        return broker.status(job_id, queue) if isinstance(broker, BrokerAdmin) else "unknown"

    def find_queue(self, job_id: str) -> str | None:
        """The queue that holds ``job_id`` or its result, if any: the application's known
        queues first, then every other queue the broker knows of (when it has the admin
        tier), so a job sent by another application to a queue this one never names is
        found too. Listing the broker's queues can cost a scan (Redis): only when needed."""
        broker = self.backends.broker
        own = self.known_queues()
        found = self._look_in(job_id, sorted(own))
        if found is None and isinstance(broker, BrokerAdmin):
            found = self._look_in(job_id, [q for q in broker.queues() if q not in own])
        return found

    def _look_in(self, job_id: str, queues: list[str]) -> str | None:
        broker = self.backends.broker
        for queue in queues:
            if isinstance(broker, BrokerAdmin) and broker.status(job_id, queue) != "unknown":
                return queue
            if self.backends.results.get(job_id, 0, queue) is not None:
                return queue
        return None
