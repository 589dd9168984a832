"""The jobs a worker holds, from reservation until their outcome is in the outbox, and how
many more it may take (its slots plus the prefetch).

All state here is guarded by the worker's one Condition (an RLock underneath, so a caller
that already holds it, like the outbox, may call in). Methods change state under it and do
no I/O; interrupting a thread (an async exception) is the one exception, because it must not
race the thread leaving the job's code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._errors import Cancelled, JobTimeout
from .._types import Delivery, Job
from .threads import raise_in_thread

if TYPE_CHECKING:
    from .._task import Task

PREFETCH_WAIT = 0.05  # seconds a prefetched job may wait for a slot, about (adaptive prefetch)
# Seconds an unstarted job beyond the (shrunken) capacity waits before it is given back.
HOARD_WAIT = 0.25
EWMA_WEIGHT = 0.1  # of the newest job in the running average of run times


def adaptive_prefetch(concurrency: int, job_seconds: float | None, stuck: int = 0) -> int:
    """The default prefetch: the jobs that free slots take in about PREFETCH_WAIT, up to
    2 * concurrency (Dramatiq's default). Short jobs get a deep prefetch, so one round trip
    reports and reserves many jobs and no thread waits for the next batch; long jobs (fewer
    than one slot freed per PREFETCH_WAIT) get none, so a worker never holds a job that waits
    for one of its slots while another worker (another process of ``-p``) could start it now;
    the next job then costs one round trip, little beside a long job. ``job_seconds`` is the
    average run time so far (None before any job finished: concurrency // 4 of the slots not
    stuck, at least 1 while none is); ``stuck`` slots run a job already far longer than that,
    so they free no slot soon."""
    if job_seconds is None:
        return max(0 if stuck else 1, (concurrency - stuck) // 4)
    wanted = (concurrency - stuck) * PREFETCH_WAIT / max(job_seconds, 1e-6)
    return min(2 * concurrency, int(wanted))


def _averaged(average: float | None, seconds: float) -> float:
    """The running average of run times with one more."""
    return seconds if average is None else average + (seconds - average) * EWMA_WEIGHT


@attrs.define(eq=False)
class Work:
    """One job this worker holds."""

    delivery: Delivery
    job: Job
    task: Task[Any, Any]
    thread_id: int | None = None
    reserved: float = attrs.field(factory=time.monotonic)
    started: float | None = None  # monotonic time the job started running
    deadline: float | None = None
    in_user_code: bool = False
    finished: bool = False  # its outcome was decided (by the job, a timeout, or a give-back)
    cancelled: bool = False  # its cancel request reached this worker (current_job() reads it)
    settled: bool = False  # its settlement went to the outbox (not given back)
    stop_async: Callable[[], None] | None = None  # cancels an async job's task on its loop


class HeldJobs:
    """Held jobs and capacity. ``prefetch`` None means adaptive; ``inline`` holds one job."""

    def __init__(
        self, cond: threading.Condition, concurrency: int, prefetch: int | None, inline: bool
    ) -> None:
        self._cond = cond
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.inline = inline
        self._held: set[Work] = set()
        self._zombies: set[Work] = set()  # timed out, but the thread has not returned yet
        self.job_seconds: float | None = None  # running average of the sync jobs' run time
        self.async_job_seconds: float | None = None  # and of the event loop's jobs
        # Slots of the worker's event loop (aloop.py), counted beside the sync ones: async
        # jobs neither take a thread's slot nor its prefetch. 0: async jobs use the threads.
        self.async_slots = 0

    def _capacity(self) -> int:
        if self.inline:
            return 1
        if self.prefetch is not None:
            return self.concurrency + self.prefetch + self._async_capacity(self.prefetch)
        average = self.job_seconds
        # A job running much longer than the average (before any finished: than
        # 4 * PREFETCH_WAIT) holds its slot: after short jobs, a few long ones must not leave
        # the deep prefetch of the short ones in place, nor a first long job the initial one.
        typical = PREFETCH_WAIT if average is None else max(PREFETCH_WAIT / 4, average)
        since = time.monotonic() - 4 * typical
        stuck = sum(1 for w in self._held if w.started is not None and w.started < since
                    and not w.finished and not (self.async_slots and w.task.is_async))
        return (self.concurrency + adaptive_prefetch(self.concurrency, average, stuck)
                + self._async_capacity(None))

    def _async_capacity(self, prefetch: int | None) -> int:
        """The event loop's slots and their own prefetch (adaptive, from the async jobs'
        average run time): a job waiting in the worker starts the moment a slot frees,
        instead of a round trip later (a drain of 50 ms jobs on 100 slots: +5%)."""
        if not self.async_slots:
            return 0
        if prefetch is None:
            prefetch = adaptive_prefetch(self.async_slots, self.async_job_seconds)
        return self.async_slots + prefetch

    def room(self) -> tuple[int, int]:
        """(free, linger goal): how many more jobs to reserve, and how many finished jobs a
        full worker waits for before reporting (a slot per thread, or the prefetch when
        smaller)."""
        with self._cond:
            capacity = self._capacity()
            free = capacity - len(self._held) - len(self._zombies)
            return free, min(self.concurrency, capacity - self.concurrency)

    def add(self, work: Work) -> None:
        with self._cond:
            self._held.add(work)

    def count(self) -> int:
        with self._cond:
            return len(self._held)

    def begin(self, work: Work) -> bool:
        """The job's thread starts it; False when it was given back before it started."""
        with self._cond:
            if work.finished:
                return False
            work.thread_id = threading.get_ident()
            work.started = started = time.monotonic()
            if work.task.options.timeout is not None:
                work.deadline = started + work.task.options.timeout
            work.in_user_code = True
            return True

    def leave_user_code(self, work: Work, run_seconds: float) -> None:
        """The job's code returned; a timeout that fired meanwhile and has not been raised
        yet is withdrawn, so it cannot land in the worker's own code."""
        with self._cond:
            work.in_user_code = False
            timed_out = work.finished
            if self.async_slots and work.task.is_async:
                self.async_job_seconds = _averaged(self.async_job_seconds, run_seconds)
            else:
                self.job_seconds = _averaged(self.job_seconds, run_seconds)
            if timed_out and work.thread_id is not None:
                raise_in_thread(work.thread_id, None)

    def mark_cancelled(
        self, work: Work, grace: float | None, now: float
    ) -> Literal["unstarted", "running"] | None:
        """A cancel request for ``work`` arrived. Unstarted: claimed (it never starts; the
        caller settles it). Running: flagged; an async job's task is cancelled, a sync one
        with a ``grace`` gets a deadline ``grace`` seconds from ``now`` (monotonic), which
        ``expire`` enforces like a timeout. None: decided or flagged already."""
        with self._cond:
            if work.finished or work.cancelled:
                return None
            work.cancelled = True
            if work.started is None:
                work.finished = True
                return "unstarted"
            if work.stop_async is not None:
                work.stop_async()
            elif grace is not None and not work.task.is_async:
                end = now + grace
                work.deadline = end if work.deadline is None else min(work.deadline, end)
            return "running"

    def set_stopper(self, work: Work, stop: Callable[[], None] | None) -> None:
        """How to cancel ``work``'s async task (None once it ended); used at once when it
        was cancelled before its task existed."""
        with self._cond:
            work.stop_async = stop
            if stop is not None and work.cancelled:
                stop()

    def finish(self, work: Work) -> bool:
        """The job's own thread claims the job's outcome: False when a timeout or a cold stop
        decided it first (then the thread is no longer a zombie)."""
        with self._cond:
            if work.finished:
                self._zombies.discard(work)
                self._cond.notify_all()
                return False
            work.finished = True
            return True

    def take_hoarded(self, now: float) -> list[Work]:
        """Claim (and drop) unstarted jobs beyond the capacity that waited HOARD_WAIT, the
        newest first, to give back: after short jobs the deep prefetch filled up with long
        ones, and the capacity shrank (see _capacity); another worker can start them now."""
        with self._cond:
            if self.inline or self.prefetch is not None:
                return []
            excess = len(self._held) + len(self._zombies) - self._capacity()
            if excess <= 0:
                return []
            waiting = [w for w in self._held if w.started is None and not w.finished
                       and w.reserved <= now - HOARD_WAIT]
            waiting.sort(key=lambda w: w.reserved, reverse=True)
            for work in waiting[:excess]:
                work.finished = True
                self._held.discard(work)
            return waiting[:excess]

    def unstarted(self) -> bool:
        with self._cond:
            return any(w.started is None and not w.finished for w in self._held)

    def take_back(self, work: Work) -> bool:
        """Claim a job for a give-back (shutdown) and drop it; False if already decided."""
        with self._cond:
            if work.finished:
                return False
            work.finished = True
            self._held.discard(work)
            return True

    def release(self, work: Work) -> None:
        """Drop a job whose outcome is now in the outbox."""
        with self._cond:
            self._held.discard(work)

    def snapshot(self) -> tuple[list[Delivery], list[Work], bool]:
        """(leased deliveries to renew, jobs still running, whether any thread is a zombie)."""
        with self._cond:
            running = [w for w in self._held if not w.finished]
            return [w.delivery for w in self._held], running, bool(self._zombies)

    def expire(self, now: float) -> tuple[list[Work], float | None]:
        """Claim the jobs past their deadline and interrupt their threads; return them, and
        the monotonic time of the next deadline."""
        expired: list[Work] = []
        next_deadline: float | None = None
        with self._cond:
            for work in self._held:
                if work.deadline is None or work.finished:
                    continue
                if work.deadline > now:
                    if next_deadline is None or work.deadline < next_deadline:
                        next_deadline = work.deadline
                    continue
                work.finished = True
                expired.append(work)
                if work.in_user_code and work.thread_id is not None:
                    if not work.task.is_async:
                        # Interrupts Python code; a thread blocked in C keeps its slot until
                        # the call returns (see docs/worker.md). A cancelled job's deadline
                        # is its grace running out.
                        raise_in_thread(work.thread_id,
                                        Cancelled if work.cancelled else JobTimeout)
                    # An async job's own loop cancels it at this deadline (coroutines.py): an
                    # exception raised into the loop's code would leave its task pending, to
                    # resume inside the thread's next async job.
                    self._zombies.add(work)
        return expired, next_deadline
