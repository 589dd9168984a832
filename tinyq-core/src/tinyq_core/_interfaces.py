"""The broker's interfaces a plugin can implement: Broker (and its optional tiers BrokerAdmin
and WorkerRegistry) and ResultBackend. Serializer and Executor are in _runtime_interfaces.py.

They are deliberately small. A broker moves opaque message bodies with at-least-once delivery;
everything about tasks, arguments, signing and retries stays in the application and the worker.
A broker must implement the eight abstract methods of :class:`Broker` and offer a result
backend; :class:`BrokerAdmin` adds what inspection and the admin commands need, and the core
checks for it with ``isinstance``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ._errors import ConfigurationError
from ._types import (
    DeadLetter,
    Delivery,
    JobStatus,
    Message,
    QueueCounts,
    Result,
    SettleRequest,
)


class ResultBackend(abc.ABC):
    """Stores job outcomes for a while and lets producers wait for them."""

    @abc.abstractmethod
    def store(self, results: Sequence[Result], ttl: float) -> None:
        """Store several results at once; each expires ``ttl`` seconds later."""

    @abc.abstractmethod
    def get(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        """Return the result of ``job_id`` (a job of ``queue``), waiting up to ``timeout``
        seconds for it (``None``: wait forever; ``0``: do not wait). Waiting must block, not
        poll. ``None`` when absent."""

    def stored(self, jobs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``jobs``, ``(queue, job id)`` pairs, have a stored result. A signing
        worker asks once per fetched batch, to drop replayed messages of jobs that ran. The
        default calls ``get`` for each; a backend that can ask in one round trip overrides it."""
        return {(queue, job_id) for queue, job_id in jobs
                if self.get(job_id, 0, queue) is not None}

    def get_many(self, jobs: Sequence[tuple[str, str]]) -> list[Result | None]:
        """The results of ``jobs``, ``(queue, job id)`` pairs, in order, without waiting (a
        chord's callback reads its members'). The default calls ``get`` for each; a backend
        that can read them in one round trip overrides it."""
        return [self.get(job_id, 0, queue) for queue, job_id in jobs]

    def store_progress(self, job_id: str, queue: str, body: bytes, ttl: float) -> None:
        """Optional: keep ``body``, the latest progress of running job ``job_id`` (of
        ``queue``), replacing the one before, for ``ttl`` seconds. Not implemented: the
        backend keeps no progress (``set_progress`` and ``progress()`` say so)."""
        raise NotImplementedError

    def progress(self, job_id: str, queue: str) -> bytes | None:
        """Optional: the latest progress stored for ``job_id``, or None."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections."""


class Broker(abc.ABC):
    """Moves messages from producers to workers, at least once (the required tier).

    A reserved message is leased for ``visibility_timeout`` seconds: unless it is renewed, acked,
    nacked or dead-lettered by then, ``recover`` makes it deliverable again.

    ``poll_interval`` says how a blocked ``reserve`` learns of a message enqueued by another
    process: ``None`` (the default) means it is woken at once (Redis, a server that blocks);
    a number of seconds means it looks again at that interval, so a job enqueued elsewhere may
    wait that long before it starts. A broker that lives in one process only (``memory://``)
    keeps ``None``: nothing else can enqueue to it.
    """

    visibility_timeout: float = 30.0
    poll_interval: float | None = None

    @abc.abstractmethod
    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        """Add messages in one operation; a message with a ``due`` time waits until then.
        All or none: a failure leaves none of them enqueued where the broker can promise it.
        An id still queued, delayed or leased in its queue is skipped, and so is one whose
        result is still stored in this broker's own result backend (the job ran).

        With ``durable``, return only once the messages would survive the loss of the server
        that took them (a replica has them), else raise :class:`BrokerError`; a broker with
        nothing to wait for (one process, one disk) returns as usual."""

    @abc.abstractmethod
    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        """Lease up to ``count`` due messages, taking from earlier queues first (``count`` of
        them when that many are ready), oldest first within a queue.

        Blocks up to ``timeout`` seconds while nothing is due (without polling); returns
        ``[]`` on timeout. Two consumers never hold a lease on the same message."""

    @abc.abstractmethod
    def renew(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery] | None:
        """Extend the leases of messages that are still being worked on. May return the
        deliveries whose lease was lost (it expired and the message was handed out again):
        the worker warns that they may run twice. ``None``: the broker cannot tell."""

    @abc.abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery] | None:
        """Remove finished messages for good. May return the deliveries whose lease was lost
        before the ack (their messages were handed out again, and are left alone), as
        :meth:`renew` does."""

    @abc.abstractmethod
    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        """Give a message back to its queue, due after ``delay`` seconds, optionally with a new
        body (a retry records its count there). Its delivery count starts again."""

    @abc.abstractmethod
    def dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        error: str = "",
        *,
        result: Result | None = None,
        result_ttl: float = 0.0,
        verified: bool = True,
    ) -> None:
        """Move a message to its queue's dead-letter store with why, storing the delivery's
        message (the worker may give a new body: the job with its retry count reset, so a
        requeued dead letter gets its retries again). Nothing happens when ``delivery`` is no
        longer leased (its lease expired and it was handed out again).

        ``result``, the job's failure, goes to this broker's own result backend (expiring
        ``result_ttl`` seconds later) in the same step: one atomic operation where the broker
        can, else the result first. Whoever sees the failure then finds the dead letter.

        ``verified=False`` (passed only then): the message failed its signature check, so the
        job id it carries is a claim anyone with write access can make. Remove this delivery
        and record the dead letter, but touch nothing else stored under that id: the real
        job of that id may be queued, running or finished."""

    @abc.abstractmethod
    def recover(self, queues: Sequence[str]) -> int:
        """Make messages of ``queues`` whose lease expired deliverable again; return how many.
        Their delivery count goes on counting."""

    @abc.abstractmethod
    def move_due(self, queues: Sequence[str]) -> float | None:
        """Make delayed messages of ``queues`` that are now due deliverable; return the seconds
        until the next delayed message is due, or ``None`` when there is none."""

    def wait_for_delayed(self, queues: Sequence[str], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, returning early when a delayed message that is due
        sooner than the mover knew of may have been added; True if it waited. The default
        does not wait (False) and the worker's mover sleeps by itself: right for brokers
        whose ``reserve`` delivers due messages anyway, or that cannot be woken."""
        return False

    def wake_delayed_waiters(self, queues: Sequence[str]) -> None:
        """End every ``wait_for_delayed`` of ``queues`` now: a stopping worker wakes its mover,
        so that the worker exits at once rather than at the end of the mover's wait (other
        workers' movers wake too, and wait again). The default does nothing: right for a
        broker whose ``wait_for_delayed`` does not wait."""
        return None

    def settle_and_reserve(self, request: SettleRequest) -> list[Delivery]:
        """The worker's whole report and next fetch (its hot path): store ``request.results``
        in this broker's own result backend, then ack ``request.acks``, then reserve up to
        ``request.count`` (none when 0). The worker passes results here only when the
        application uses :meth:`result_backend`; with another backend it stores them itself
        first. A broker that can do it in one round trip overrides this; the default makes up
        to three calls in that order."""
        if request.results:
            self.result_backend().store(request.results, request.result_ttl)
        if request.acks:
            lost = self.ack(request.acks)
            if lost and request.on_lost is not None:
                request.on_lost(lost)
        if request.count <= 0:
            return []
        return self.reserve(request.queues, request.count, request.timeout)

    def ping(self) -> None:  # noqa: B027 - brokers without a connection have nothing to check
        """Raise :class:`BrokerUnavailable` when the broker cannot be reached."""

    def check_server(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Raise :class:`ConfigurationError` when the broker's server is set up to lose jobs
        (Redis evicting keys, say). A worker calls it as it starts; a broker may also check
        at its first use, once. One that cannot be reached raises :class:`BrokerError`."""

    def result_backend(self) -> ResultBackend:
        """The result backend that lives beside this broker, if it has one."""
        raise ConfigurationError(
            f"{type(self).__name__} has no result backend: pass result_backend= to Application"
        )

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections."""


class BrokerAdmin(abc.ABC):
    """The optional admin tier of a broker: inspection and repair, for job handles'
    ``status()``, the admin commands and dashboards. A broker offers it by inheriting it
    beside :class:`Broker` (``class MyBroker(Broker, BrokerAdmin)``); without it,
    ``JobHandle.status()`` knows only stored results, and the admin tests of the contract
    suite are skipped.
    """

    @abc.abstractmethod
    def status(self, job_id: str, queue: str = "default") -> JobStatus:
        """``"queued"``, ``"scheduled"``, ``"started"`` (leased) or ``"unknown"`` (not a
        message of ``queue`` that is waiting or leased)."""

    @abc.abstractmethod
    def size(self, queue: str) -> int:
        """Messages waiting in ``queue`` (due or delayed), not counting leased ones."""

    @abc.abstractmethod
    def count_leased(self, queue: str) -> int:
        """Messages of ``queue`` leased to a consumer now (running or prefetched)."""

    @abc.abstractmethod
    def queues(self) -> list[str]:
        """The known queues, sorted: every queue a message was ever sent to (it stays listed
        once drained or purged), and any holding messages, delayed messages or dead letters.
        ``app.job(id)`` and ``tinyq info`` look in these."""

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Delete the waiting messages of ``queue``; return how many."""

    @abc.abstractmethod
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """The dead letters of ``queue``, oldest first."""

    @abc.abstractmethod
    def requeue_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all, or those with the given message ids) back on their queue,
        deleting their stored results: a requeued job is waiting again, not failed."""

    @abc.abstractmethod
    def purge_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Delete the dead letters of ``queue`` (all, or those with the given message ids);
        return how many. Their stored failures stay until their TTL. (``ids`` came after the
        first release: the core passes it only when asked to delete some, so a broker
        without it can still delete all.)"""

    # Added after the first release: not abstract, so brokers written against the earlier
    # tier keep working; the admin commands say "not supported by this broker" for them.

    def message(self, job_id: str, queue: str = "default") -> Delivery | None:
        """The message of ``job_id`` while it is waiting, delayed or leased in ``queue``, as
        a :class:`Delivery` (``attempts`` 0 and ``receipt`` None when not leased); ``None``
        when it is not there. For ``tinyq job`` and dashboards: never a lease."""
        raise NotImplementedError(f"{type(self).__name__} cannot look up a message")

    def messages(self, queue: str, offset: int = 0, limit: int = 100) -> list[Message]:
        """A page of the messages waiting in ``queue`` (due first, oldest first; then the
        delayed ones by due time), skipping ``offset`` of them. Never leases anything."""
        raise NotImplementedError(f"{type(self).__name__} cannot list messages")

    def counts(self, queue: str) -> QueueCounts:
        """How many messages of ``queue`` are ready (due), scheduled (delayed), leased, and
        dead-lettered, each exact, in a few cheap reads (no scan): for ``tinyq info`` and
        dashboards."""
        raise NotImplementedError(f"{type(self).__name__} cannot count a queue's messages")


class WorkerRegistry(abc.ABC):
    """The optional worker-registry tier: where worker processes announce themselves, for
    ``tinyq info`` and dashboards. A broker offers it by inheriting it beside :class:`Broker`.

    A record is opaque bytes (the core encodes a :class:`WorkerInfo`); the broker keeps the
    latest record of each worker id and forgets it ``ttl`` seconds after it was written, so a
    worker that died without a word disappears by itself.
    """

    @abc.abstractmethod
    def record_worker(self, worker_id: str, record: bytes, ttl: float) -> None:
        """Store (or replace) the record of ``worker_id``; it expires ``ttl`` seconds later
        unless written again (a heartbeat)."""

    @abc.abstractmethod
    def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id`` now (a worker that stopped); no error when unknown."""

    @abc.abstractmethod
    def worker_records(self) -> list[bytes]:
        """The records of every worker whose record has not expired, in no set order."""
