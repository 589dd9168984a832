"""The scheduler: thread ``Scheduler`` of every worker (unless ``scheduler=False``) enqueues
the application's periodic schedules, whatever queues the worker serves.

Every worker runs one, and they race: a tick is enqueued by the scheduler whose
``claim_tick`` records it first in the broker, in the same atomic step as the enqueue, so
each tick gets exactly one job however many run. It sleeps until the next tick of any
schedule (a stop wakes it) and claims only the latest tick due: after a stall or an outage,
one run, never a storm.

At start, for each schedule: with no record, the latest past tick is recorded without a job
(a new schedule does not run at deploy time); with a record older than the latest past tick,
that tick is claimed with its job when the schedule catches up (``catch_up=True``) or when it
fell due only just now (a running worker would claim it at this moment: starting must not take
its run away), else recorded without a job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._control_interfaces import ScheduleRecords
from .._producer import Producer
from .._schedules import Schedule, last_ticks
from .ladder import ShutdownLadder

if TYPE_CHECKING:
    from .._app import Application

logger = logging.getLogger("tinyq.worker")

ON_TIME = 5.0  # seconds: at start, a tick this recent is on time, not a missed one
OUTAGE_RETRY = 1.0  # seconds before a failed claim is tried again (if still the latest tick)
MAX_SLEEP = 60.0  # seconds: look at the wall clock again at least this often (clock steps)


def scheduler_of(app: Application, ladder: ShutdownLadder) -> Callable[[], None]:
    """The scheduler's thread body for ``app``'s schedules; a warning, and nothing to run,
    when its broker keeps no schedule records."""
    broker = app.broker
    if not isinstance(broker, ScheduleRecords):
        return lambda: logger.warning(
            "%d schedule(s) not run: the broker %s keeps no schedule records (ScheduleRecords)",
            len(app.schedule_registry), type(broker).__name__)
    # The producer's encoding, checks and hooks, as for any enqueue.
    return Scheduler(broker, list(app.schedule_registry), app._producer, ladder).run


class Scheduler:
    """Claims the ticks of ``schedules`` as they fall due, on the wall ``clock``; ends at a
    stop. ``step`` is one look (the tests drive it with a fake clock)."""

    def __init__(
        self,
        broker: ScheduleRecords,
        schedules: Sequence[Schedule],
        producer: Producer,
        ladder: ShutdownLadder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._broker, self._schedules = broker, list(schedules)
        self._producer, self._ladder, self._clock = producer, ladder, clock
        self._due: dict[str, float | None] = {}  # schedule name: when to look next
        self._started = False
        self._failing = False

    def run(self) -> None:
        while self._ladder.running:
            wait = self.step()
            self._ladder.wait_for_stop(min(wait, MAX_SLEEP))

    def step(self) -> float:
        """Claim what is due now; seconds until the next look."""
        now = self._clock()
        if not self._started:
            self._started = self._start(now)
            if not self._started:
                return OUTAGE_RETRY
        for schedule in self._schedules:
            due = self._due[schedule.name]
            if due is not None and due <= now:
                self._claim_latest(schedule, now)
        dues = [due for due in self._due.values() if due is not None]
        return max(0.0, min(dues) - self._clock()) if dues else MAX_SLEEP

    def _start(self, now: float) -> bool:
        try:
            recorded = last_ticks(self._broker, self._schedules)
        except Exception as exc:
            self._failed(exc)
            return False
        claimed = True
        for schedule in self._schedules:
            latest = schedule.latest_tick(now)
            last = recorded.get(schedule.name)
            self._due[schedule.name] = schedule.next_tick(now)
            if latest is None or (last is not None and last >= latest):
                continue
            run = last is not None and (schedule.catch_up or now - latest < ON_TIME)
            # A start that failed part-way starts again: a claim made already then loses.
            claimed = self._claim(schedule, latest, run) and claimed
        return claimed

    def _claim_latest(self, schedule: Schedule, now: float) -> None:
        latest = schedule.latest_tick(now)
        self._due[schedule.name] = schedule.next_tick(now)
        if latest is not None:
            self._claim(schedule, latest, run=True)

    def _claim(self, schedule: Schedule, tick: float, run: bool) -> bool:
        """Record ``tick``, with its job when ``run``; False when the broker failed (the
        claim is tried again in a moment)."""
        producer = self._producer
        try:
            job, message = producer.message_of(schedule.job(tick)) if run else (None, None)
        except Exception:  # a hook's or the codec's: this tick cannot run; say so each time
            logger.exception("Schedule %s: could not make the job of its tick %s",
                             schedule.name, schedule.job_id(tick))
            return True
        try:
            won = self._broker.claim_tick(schedule.queue, schedule.name, tick, message,
                                          durable=producer.durable_enqueue)
        except Exception as exc:  # an outage must not stop the worker
            self._failed(exc)
            due = self._due[schedule.name]
            retry = self._clock() + OUTAGE_RETRY
            self._due[schedule.name] = retry if due is None else min(due, retry)
            return False
        if self._failing:
            self._failing = False
            logger.info("The scheduler reaches the broker again")
        if won and job is not None:
            logger.info("Schedule %s: enqueued %r", schedule.name, job)
            if producer.hooks.after_enqueue:
                producer.hooks.call("tinyq_after_enqueue", job=job)
        return True

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            logger.warning("The scheduler could not reach the broker (periodic jobs wait "
                           "until it can; a tick missed meanwhile runs once): %s", exc)
