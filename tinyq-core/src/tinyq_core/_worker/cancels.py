"""Cancel requests on the worker's side: the ``CancelWatcher`` thread asks the broker about
once a second which of the jobs this worker holds were cancelled, and flags them.

A flagged job that has not started never starts: it is settled here as cancelled. A running
one is flagged for ``current_job().cancelled``; an async one's task is cancelled on its loop;
a sync one with a ``grace`` gets a deadline, which the Housekeeper enforces as it does
timeouts (raising ``Cancelled`` in its thread). Whatever way a flagged job then ends, short
of returning a value, it is acknowledged as cancelled, never retried (runner.py). Once it is
settled, its request is deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from .._codec import Codec, Outcome
from .._control_interfaces import CancelRequests
from .._lifecycle import NO_HOOKS, Hooks
from .._types import Job
from .health import BrokerHealth
from .held import HeldJobs, Work
from .ladder import ShutdownLadder
from .logfields import job_fields
from .outbox import Outbox
from .policy import AckJob

logger = logging.getLogger("tinyq.worker")

POLL_INTERVAL = 1.0  # seconds between looks for cancel requests (while any job is held)


def cancelled_settlement(
    work: Work, codec: Codec, why: str, error: BaseException | None = None
) -> AckJob:
    """Acknowledge ``work`` with the "cancelled" outcome (stored whatever ``store_result``:
    a producer's ``status()`` must say so)."""
    traceback = "" if error is None else Outcome.of_exception(error).traceback
    job = work.job
    result = codec.encode_result(job.id, job.queue, Outcome.cancelled(why, traceback))
    return AckJob(work.delivery, result, kind="cancelled")


class CancelWatcher:
    """Thread ``CancelWatcher``, started only for a broker with the CancelRequests tier;
    ends when the worker's ladder reaches DONE."""

    def __init__(
        self,
        broker: CancelRequests,
        held: HeldJobs,
        outbox: Outbox,
        codec: Codec,
        ladder: ShutdownLadder,
        health: BrokerHealth,
        deadline_set: threading.Event,
        hooks: Hooks = NO_HOOKS,
        interval: float | None = None,
    ) -> None:
        self._broker, self._held, self._outbox, self._codec = broker, held, outbox, codec
        self._ladder, self._health, self._hooks = ladder, health, hooks
        self._deadline_set = deadline_set  # wakes the housekeeper for a grace's deadline
        self.interval = POLL_INTERVAL if interval is None else interval
        self._flagged: list[Work] = []  # flagged here, their requests not deleted yet

    def run(self) -> None:
        done = self._ladder.done
        while not done.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:
                self._health.failed(exc)
        try:
            self._forget_settled(set())
        except Exception as exc:  # the requests expire by themselves
            logger.debug("Could not delete cancel requests at shutdown: %s", exc)

    def poll(self) -> None:
        """One look: flag the held jobs with a cancel request."""
        _, held, _ = self._held.snapshot()
        self._forget_settled(set(held))
        by_queue: dict[str, list[Work]] = defaultdict(list)
        for work in held:
            if not work.cancelled:
                by_queue[work.job.queue].append(work)
        for queue, works in by_queue.items():
            found = self._broker.cancel_requests(queue, [w.job.id for w in works])
            for work in works:
                if work.job.id in found:
                    self._flag(work, found[work.job.id])

    def requested(self, job: Job) -> bool:
        """Whether ``job`` has a cancel request: asked before a retry is scheduled."""
        return job.id in self._broker.cancel_requests(job.queue, [job.id])

    def _flag(self, work: Work, grace: float | None) -> None:
        state = self._held.mark_cancelled(work, grace, time.monotonic())
        if state is None:
            return
        self._flagged.append(work)
        if state == "running":
            logger.info("Job %r was cancelled: asked to stop%s", work.job,
                        "" if grace is None or work.task.is_async
                        else f" (interrupted in {grace:g}s if still running)")
            if grace is not None:
                self._deadline_set.set()
            return
        logger.info("Job %r was cancelled before it started: not run", work.job,
                    extra=job_fields(work, outcome="cancelled", started=False))
        settlement = cancelled_settlement(work, self._codec, "cancelled before it started")
        if self._hooks.settles:
            self._hooks.call("tinyq_job_cancelled", job=work.job, started=False)
        self._outbox.put(settlement, work)

    def _forget_settled(self, held: set[Work]) -> None:
        """Delete the requests of flagged jobs settled (no longer held) whose settlement
        reached the broker: until then the job may be delivered again (this worker killed
        first), and must find its request. A job given back (a cold stop) keeps its
        request, for the worker it goes to next."""
        unsent = {id(delivery) for delivery in self._outbox.deliveries()}
        sent = [w for w in self._flagged if w not in held and w.settled
                and id(w.delivery) not in unsent]
        self._flagged = [w for w in self._flagged if w in held
                         or (w.settled and id(w.delivery) in unsent)]
        for work in sent:
            self._broker.forget_cancel_request(work.job.queue, work.job.id)
