"""Housekeeping threads: the Housekeeper renews leases, recovers expired ones and enforces
task timeouts; the Mover moves delayed jobs to their queues when due. Both end when the
worker's ladder reaches DONE."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from .._codec import Codec
from .._errors import Cancelled
from .._interfaces import Broker
from .._lifecycle import NO_HOOKS, Hooks
from .cancels import cancelled_settlement
from .health import BrokerHealth
from .held import HOARD_WAIT, HeldJobs
from .ladder import ShutdownLadder
from .leases import LostLeases
from .limits import Limiter
from .outbox import Outbox
from .policy import Settlement, settle, timed_out
from .runner import log_settlement, report

logger = logging.getLogger("tinyq.worker")

MOVER_MAX_SLEEP = 1.0  # seconds; the mover looks again at least this often
MOVER_OUTAGE_SLEEP = 1.0


class Housekeeper:
    """Renews every held lease each third of the visibility timeout, recovers expired leases
    of its queues a few times per lease, and fails jobs past their timeout."""

    def __init__(
        self,
        broker: Broker,
        queues: Sequence[str],
        held: HeldJobs,
        outbox: Outbox,
        codec: Codec,
        ladder: ShutdownLadder,
        health: BrokerHealth,
        deadline_set: threading.Event,
        leases: LostLeases,
        hooks: Hooks = NO_HOOKS,
        limiter: Limiter | None = None,
    ) -> None:
        self._limiter = limiter  # concurrency limits' slots, leased as jobs are
        self._broker, self._queues = broker, list(queues)
        self._held, self._outbox, self._codec = held, outbox, codec
        self._hooks = hooks
        self._leases = leases
        self._ladder, self._health = ladder, health
        self.deadline_set = deadline_set  # set by a starting job with a timeout, and at DONE

    def run(self) -> None:
        visibility = self._broker.visibility_timeout
        renew_every = max(0.05, visibility / 3)
        recover_every = max(0.05, min(1.0, visibility / 4))
        next_renew = next_recover = time.monotonic()
        while not self._ladder.done.is_set():
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + renew_every
                    leased, _, _ = self._held.snapshot()
                    leased += self._outbox.deliveries()
                    if leased:
                        lost = self._broker.renew(leased)
                        if lost:
                            self._leases.lost(lost)
                    if self._limiter is not None:
                        self._limiter.renew()
                if now >= next_recover:
                    next_recover = now + recover_every
                    self._broker.recover(self._queues)
            except Exception as exc:
                self._health.failed(exc)
            next_deadline = self._enforce_timeouts()
            # Unstarted jobs may turn out to be hoarded: look again soon.
            next_hoard = self._give_back_hoarded()
            wake = min(next_renew, next_recover, next_deadline or float("inf"), next_hoard)
            self.deadline_set.wait(max(0.0, wake - time.monotonic()))
            self.deadline_set.clear()

    def _give_back_hoarded(self) -> float:
        """Give back the unstarted jobs the worker should no longer hold (see
        HeldJobs.take_hoarded); returns when to look again."""
        now = time.monotonic()
        hoarded = self._held.take_hoarded(now)
        if hoarded:
            logger.info("Giving back %d unstarted job(s): this worker's slots are busy with "
                        "long jobs, another worker can start them now", len(hoarded))
        for work in hoarded:
            if self._limiter is not None:  # its slot, before another worker can run it
                self._limiter.release(work, at_once=True)
            if self._hooks.given_back:
                self._hooks.call("tinyq_job_given_back", job=work.job, started=False)
            try:
                self._broker.nack(work.delivery)
            except Exception as exc:  # not renewed any more: it comes back after its lease
                logger.error("Could not give back %r (it will be redelivered after its "
                             "lease): %s", work.job, exc)
        self._leases.settled([w.delivery for w in hoarded])
        return now + HOARD_WAIT / 2 if self._held.unstarted() else float("inf")

    def _enforce_timeouts(self) -> float | None:
        expired, next_deadline = self._held.expire(time.monotonic())
        for work in expired:
            error: BaseException
            settlement: Settlement
            if work.cancelled:  # its grace ran out (held.mark_cancelled)
                logger.warning("Job %r was cancelled and did not stop within its grace: "
                               "interrupted", work.job)
                error = Cancelled("interrupted: the grace given to cancel() ran out")
                settlement = cancelled_settlement(work, self._codec, "interrupted after its "
                                                  "grace", error)
            else:
                timeout = work.task.options.timeout
                logger.error("Job %r exceeded its timeout of %ss", work.job, timeout)
                error = timed_out(timeout)
                settlement = settle(work.delivery, work.job, work.task.options, self._codec,
                                    None, error)
            log_settlement(work, settlement, error)
            if self._hooks.settles:
                started = work.started if work.started is not None else time.monotonic()
                report(self._hooks, work, settlement, None, error, time.monotonic() - started)
            self._outbox.put(settlement, work)
        return next_deadline


class Mover:
    """Moves due delayed jobs of its queues, sleeping until the next one is due; the broker
    wakes it early when a sooner delayed job is added (``wait_for_delayed``)."""

    def __init__(
        self,
        broker: Broker,
        queues: Sequence[str],
        ladder: ShutdownLadder,
        health: BrokerHealth,
    ) -> None:
        self._broker, self._queues = broker, list(queues)
        self._ladder, self._health = ladder, health

    def run(self) -> None:
        done = self._ladder.done
        while not done.is_set():
            try:
                due_in = self._broker.move_due(self._queues)
                wait = MOVER_MAX_SLEEP if due_in is None else min(MOVER_MAX_SLEEP, due_in)
                if not self._broker.wait_for_delayed(self._queues, wait):
                    done.wait(wait)  # a broker that cannot wake the mover
            except Exception as exc:
                if done.is_set():
                    return  # the worker stopped (and its app may be closed): not an outage
                self._health.failed(exc)
                done.wait(MOVER_OUTAGE_SLEEP)
