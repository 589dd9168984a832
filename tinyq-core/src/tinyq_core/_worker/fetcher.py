"""The fetcher: the thread that calls ``Worker.run``. It reports finished jobs and reserves
the next batch in one broker call, admits what it got (or dead-letters it), takes the limited
jobs' rate and concurrency slots for the batch at once, and hands the jobs to the executor,
with a backoff while the broker is down."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from .._backoff import Backoff
from .._interfaces import Broker, ResultBackend
from .._lifecycle import NO_HOOKS, Hooks
from .._runtime_interfaces import Executor
from .._types import Delivery
from .health import BrokerHealth
from .held import HeldJobs, Work
from .ladder import ShutdownLadder
from .leases import LostLeases
from .limits import Limiter
from .outbox import Outbox
from .policy import AckJob, Admitted, DeadLetterJob

logger = logging.getLogger("tinyq.worker")

POLL_SECONDS = 1.0  # longest a blocking reserve waits; bounds how fast a stop is noticed
LINGER = 0.002  # seconds a full worker waits for more finished jobs to report together
BURST_SETTLE = 0.05  # seconds a burst worker waits for held jobs before looking again
OUTAGE_BACKOFF = Backoff(base=0.1, cap=5.0)


class Fetcher:
    def __init__(
        self,
        broker: Broker,
        queues: Sequence[str],
        cond: threading.Condition,
        held: HeldJobs,
        outbox: Outbox,
        ladder: ShutdownLadder,
        health: BrokerHealth,
        executor: Executor[Work],
        admit: Callable[[Delivery], Admitted | DeadLetterJob],
        leases: LostLeases,
        replays_in: ResultBackend | None = None,
        hooks: Hooks = NO_HOOKS,
        limiter: Limiter | None = None,
    ) -> None:
        self._hooks = hooks
        self._limiter = limiter  # admits limited jobs, a batch at a time (limits.py)
        self._leases = leases
        self._broker, self._queues = broker, list(queues)
        self._cond, self._held, self._outbox = cond, held, outbox
        self._ladder, self._health, self._executor = ladder, health, executor
        self._admit = admit  # policy.admit with the application's codec, tasks and limits
        self._queue_kept_up = False  # the last read got all it asked for
        # Where to look for results of fetched jobs, to drop replays (a signing worker only).
        self._replays_in = replays_in

    def run(self, burst: bool) -> None:
        """Fetch until a stop is asked for, or, with ``burst``, nothing is left."""
        failures = 0
        while self._ladder.running:
            if failures and self._ladder.wait_for_stop(OUTAGE_BACKOFF.delay(failures - 1)):
                return
            try:
                if not self._fetch_once(burst):
                    return
                self._health.ok()
                failures = 0
            except Exception as exc:
                failures += 1
                self._health.failed(exc)

    def _fetch_once(self, burst: bool) -> bool:
        """Report finished jobs and reserve the next batch in one broker call, and submit it;
        False when a burst has nothing left."""
        free, linger_goal = self._held.room()
        if free <= 0:
            with self._cond:
                if not self._outbox.pending():
                    # Full: finishing jobs leave their outcomes for us, so the report and the
                    # next reserve share one round trip. After the first one, linger a moment
                    # for more: a bigger batch for the same round trip.
                    if self._cond.wait(POLL_SECONDS):
                        self._cond.wait_for(lambda: self._outbox.pending() >= linger_goal,
                                            LINGER)
                    return True
        if burst:
            self._broker.move_due(self._queues)
        # While the queue keeps up (the last read got all it asked for), first a read that does
        # not block: jobs finishing meanwhile leave their outcomes for the next round trip
        # (fewer, larger batches). A queue that looks empty gets the blocking read, during
        # which finishing jobs report themselves, so no result waits on it.
        blocking = free > 0 and not burst
        deliveries: list[Delivery] = []
        if self._queue_kept_up or not blocking:
            deliveries = self._outbox.send_and_reserve(max(0, free), 0)
        if not deliveries and blocking:
            deliveries = self._outbox.send_and_reserve(free, POLL_SECONDS)
        self._queue_kept_up = free > 0 and len(deliveries) >= free
        self._admit_all(deliveries)
        if not (burst and not deliveries and free > 0):
            return True
        # A burst that found nothing: done once nothing is held or unreported, after one
        # more look (a retry may have become due).
        with self._cond:
            if self._held.count() or self._outbox.pending():
                self._cond.wait(BURST_SETTLE)
                return True
        self._broker.move_due(self._queues)
        deliveries = self._outbox.send_and_reserve(free, 0)
        self._admit_all(deliveries)
        return bool(deliveries)

    def _admit_all(self, deliveries: list[Delivery]) -> None:
        self._leases.reserved(deliveries)
        verdicts = [self._admit(delivery) for delivery in deliveries]
        ran = self._ran_already(deliveries, verdicts)
        works: list[Work] = []
        for delivery, verdict in zip(deliveries, verdicts, strict=True):
            if isinstance(verdict, DeadLetterJob):
                logger.error("Dead-lettering message %s from queue %r: %s", delivery.id,
                             delivery.queue, verdict.reason)
                self._outbox.put(verdict)
                if self._hooks.settles:
                    self._hooks.call("tinyq_job_dead_lettered", delivery=delivery, job=None,
                                     reason=verdict.reason)
                continue
            # A workflow's job runs again instead: its worker may have died between storing
            # its result and taking its next step (workflows.py); every step is idempotent.
            if (delivery.queue, delivery.id) in ran and verdict.job.workflow is None:
                logger.warning("Dropping message %s from queue %r: a replay, job %s has a "
                               "stored result already (it ran)", delivery.id, delivery.queue,
                               delivery.id)
                self._outbox.put(AckJob(delivery))
                continue
            work = Work(delivery, verdict.job, verdict.task)
            if self._hooks.received or self._hooks.recovered:
                self._receive(work)
            self._held.add(work)
            works.append(work)
        if self._limiter is not None:
            works = self._limiter.admit(works)
        for work in works:
            self._executor.submit(work)
        if deliveries:
            # Let a woken job thread take the GIL now, before this thread builds its next
            # request: the job starts at once instead of after that work.
            time.sleep(0)

    def _receive(self, work: Work) -> None:
        attempt = work.delivery.attempts
        self._hooks.call("tinyq_job_received", job=work.job, attempt=attempt)
        if attempt > 1:  # given back (nack) starts again at 1: only a lost lease counts on
            self._hooks.call("tinyq_job_recovered", job=work.job, attempt=attempt)

    def _ran_already(
        self, deliveries: list[Delivery], verdicts: list[Admitted | DeadLetterJob]
    ) -> set[tuple[str, str]]:
        """The (queue, job id) of admitted jobs whose result is stored: one look for the
        whole batch, and only on a signing worker (a verified message can be replayed by
        anyone who copies it; without a key, anyone can write any message anyway)."""
        if self._replays_in is None:
            return set()
        jobs = [(d.queue, d.id) for d, v in zip(deliveries, verdicts, strict=True)
                if isinstance(v, Admitted)]
        return self._replays_in.stored(jobs) if jobs else set()
