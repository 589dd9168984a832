"""Rate and concurrency limits on the worker side: the step between a job's admission and
its run, taken by the fetcher for each batch it reserved (one broker call per kind of limit
for the whole batch, so no job's thread waits on the broker for it), only for tasks with
limits (one attribute test for the others).

* Rate: the job books the next free slot of its key in the broker (``book_rates``, in batch
  order, so the jobs of one key keep theirs). Due now: it runs. Later: it is given back, due at
  its slot, with a header saying which run booked it (its retry count), so when it comes back
  it runs without booking again; a redelivery after a crash keeps the header (no second
  booking), a retry books anew.
* Concurrency: the job takes a leased slot of its key (``acquire_slots``), renewed with the
  worker's leases and freed when the job's code returned (or when a stop gives the job back);
  none free: it is given back delayed, without holding a thread, and (on a broker that
  ``wakes_slot_waiters``) noted as a waiter of its key, made due when a slot frees; its
  delay (1-2 s the first time, then 20-40 s) only matters when no wake-up comes. Other
  brokers: 0.2-2 s, jittered.

A slot is taken when the job is fetched, so a job the worker prefetched holds its slot while
it waits for a thread (a worker fetches about as many jobs as it has free threads).

A job given back this way is not a retry: its retry count and the outcome hooks and counters
are untouched (``tinyq_job_received`` fires again each time it is fetched).
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING

import attrs

from .._codec import Codec
from .._errors import ConfigurationError, describe_exception
from .._interfaces import Broker
from .._limit_interfaces import JobLimits
from .held import HeldJobs, Work
from .outbox import Outbox
from .policy import RetryJob, settle

if TYPE_CHECKING:
    from .._app import Application

logger = logging.getLogger("tinyq.worker")

RATE_BOOKED = "tinyq-rate-booked"  # header: the retry count of the run whose slot is booked
SLOT_WAITED = "tinyq-slot-waited"  # header: the retry count of a run that waited for a slot
SLOT_WAIT = (0.2, 2.0)  # seconds a job that found no free slot waits before it looks again
# ... on a broker that wakes it when a slot frees, these only count when no wake-up comes: the
# first time, a slot may have freed while the job was being given back (nobody to wake yet);
# later, a slot freed by a lease running out (a dead worker) wakes nobody either.
FIRST_WOKEN_WAIT = (1.0, 2.0)
WOKEN_WAIT = (20.0, 40.0)
RUN_NOW = 0.002  # a slot due this soon is taken as now (the mover would deliver it later)


def limiter_for(app: Application, broker: Broker, codec: Codec, held: HeldJobs,
                outbox: Outbox) -> Limiter | None:
    """The limiter of a worker whose application has limited tasks (None without any). A
    broker without the :class:`JobLimits` tier is refused: limits would not be kept."""
    limited = sorted(name for name, task in app.tasks.items()
                     if task.options.limits is not None)
    if not limited:
        return None
    if not isinstance(broker, JobLimits):
        raise ConfigurationError(
            f"{type(broker).__name__} does not keep rate or concurrency limits (the JobLimits "
            f"tier), and task(s) {', '.join(limited[:3])} have one: use a broker that does "
            "(memory, Redis, SQLite) or remove the limits")
    return Limiter(broker, codec, held, outbox, broker.visibility_timeout)


@attrs.frozen
class HeldSlot:
    queue: str
    key: str
    limit: int
    holder: str


class Limiter:
    def __init__(self, broker: JobLimits, codec: Codec, held: HeldJobs, outbox: Outbox,
                 lease_seconds: float) -> None:
        self._broker, self._codec = broker, codec
        self._held, self._outbox = held, outbox
        self._lease = lease_seconds
        self._lock = threading.Lock()
        self._slots: dict[int, HeldSlot] = {}  # id(work) -> the slot its running job holds
        self._finished: list[HeldSlot] = []  # slots of finished jobs, freed with a report

    def admit(self, works: list[Work]) -> list[Work]:
        """The jobs of a fetched (and held) batch that may start now, in order: unlimited
        ones, and limited ones whose limits let them (their slots taken). The others are
        given back, or failed when their key function raised. One broker call per kind of
        limit for the whole batch, from the fetcher: a job's thread never waits for one."""
        limited: list[tuple[Work, str | None, str | None]] = []
        for work in works:
            if work.task.options.limits is None:
                continue
            try:
                limited.append((work, *self._keys(work)))
            except Exception as exc:  # the user's key function: fails as if the job raised
                self._fail(work, exc)
        if not limited:
            return [w for w in works if w.task.options.limits is None]
        try:
            booked = self._book(limited)
        except Exception as exc:  # the broker is down: the jobs wait, they do not fail
            self._give_all_back([(work, False) for work, _, _ in limited], exc)
            return [w for w in works if w.task.options.limits is None]
        try:
            slots = self._take_slots([(w, key) for w, _, key in limited if w in booked],
                                     booked)
        except Exception as exc:
            self._give_all_back(list(booked.items()), exc)
            return [w for w in works if w.task.options.limits is None]
        with self._lock:
            self._slots.update((id(w), slot) for w, slot in slots.items()
                               if isinstance(slot, HeldSlot))
        return [w for w in works if w.task.options.limits is None or w in slots]

    @staticmethod
    def _keys(work: Work) -> tuple[str | None, str | None]:
        """(rate key, concurrency key) of the job: None where the task has no such limit."""
        job, limits = work.job, work.task.options.limits
        assert limits is not None
        return (None if limits.rate_interval is None else limits.rate_key_of(job),
                None if limits.concurrency is None else limits.concurrency_key_of(job))

    def _fail(self, work: Work, exc: Exception) -> None:
        """A key function that raised: the job's outcome, retried or failed by its options."""
        logger.error("The limit key of %r could not be computed: %s", work.job,
                     describe_exception(exc))
        if self._held.finish(work):  # else a stop gave it back already
            self._outbox.put(settle(work.delivery, work.job, work.task.options, self._codec,
                                    None, exc), work)

    def _book(self, limited: list[tuple[Work, str | None, str | None]]) -> dict[Work, bool]:
        """Book the rate slots of the jobs that need one, in batch order (so a key's jobs
        keep theirs), and give back those whose slot is later. Returns the jobs that may go
        on, each with whether it booked just now (no rate limit, or booked on an earlier
        delivery: False)."""
        going: dict[Work, bool] = {}
        asking: list[tuple[Work, tuple[str, str, float, int, str]]] = []
        for work, key, _ in limited:
            job, limits = work.job, work.task.options.limits
            assert limits is not None
            if key is None or limits.rate_interval is None or job.headers.get(
                    RATE_BOOKED) == str(job.retries):
                going[work] = False
            else:
                asking.append((work, (job.queue, key, limits.rate_interval, limits.rate_burst,
                                      f"{job.id}:{job.retries}")))
        waits = self._broker.book_rates([booking for _, booking in asking]) if asking else []
        for (work, _), wait in zip(asking, waits, strict=True):
            if wait > RUN_NOW:
                self._give_back(work, self._body(work, booked=True), wait)
            else:
                going[work] = True
        return going

    def _take_slots(self, wanting: list[tuple[Work, str | None]], booked_now: dict[Work, bool]
                    ) -> dict[Work, HeldSlot | bool]:
        """Take a slot for each job with a concurrency key; give back those that got none.
        Returns the jobs that may start, with their slot (True: no concurrency limit)."""
        admitted: dict[Work, HeldSlot | bool] = {w: True for w, key in wanting if key is None}
        asking = [(work, HeldSlot(work.job.queue, key, limits.concurrency, work.job.id))
                  for work, key in wanting if key is not None
                  and (limits := work.task.options.limits) is not None
                  and limits.concurrency is not None]
        wakes = self._broker.wakes_slot_waiters
        taken = self._broker.acquire_slots([
            (slot.queue, slot.key, slot.limit, slot.holder, self._lease)
            for _, slot in asking], wait=wakes) if asking else []
        for (work, slot), took in zip(asking, taken, strict=True):
            if took:
                admitted[work] = slot
                continue
            self._give_back_waiting(work, booked_now[work], wakes)
        return admitted

    def _give_back_waiting(self, work: Work, booked_now: bool, wakes: bool) -> None:
        """Give back a job that found no free slot; a rate slot booked just now is kept (the
        job does not book again)."""
        job = work.job
        if not wakes:
            self._give_back(work, self._body(work, booked_now), random.uniform(*SLOT_WAIT))
            return
        waited = job.headers.get(SLOT_WAITED) == str(job.retries)
        delay = random.uniform(*(WOKEN_WAIT if waited else FIRST_WOKEN_WAIT))
        self._give_back(work, self._body(work, booked_now, waited=True), delay)

    def _give_all_back(self, works: list[tuple[Work, bool]], exc: Exception) -> None:
        """The broker failed while limits were checked: each job waits and asks again (it
        does not fail), keeping a rate slot it booked just now (True beside it)."""
        logger.warning("Could not check the limits of %d job(s), giving them back: %s",
                       len(works), exc)
        for work, booked_now in works:
            self._give_back(work, self._body(work, booked_now), random.uniform(*SLOT_WAIT))

    def _body(self, work: Work, booked: bool, waited: bool = False) -> bytes:
        """The job's body to give back, marked (for this run) as having its rate slot booked
        and as having waited for a slot, as asked; its own body when nothing changes."""
        job = work.job
        marks = {name: str(job.retries) for name, wanted in ((RATE_BOOKED, booked),
                                                             (SLOT_WAITED, waited)) if wanted}
        if all(job.headers.get(name) == value for name, value in marks.items()):
            return work.delivery.message.body
        return self._codec.encode_job(attrs.evolve(job, headers={**job.headers, **marks}))

    def _give_back(self, work: Work, body: bytes, delay: float) -> None:
        if self._held.take_back(work):  # else a stop gave it back already
            logger.debug("Job %r waits %.3fs for its limits", work.job, delay)
            self._outbox.put(RetryJob(work.delivery, body, delay))

    def release(self, work: Work, *, at_once: bool = False) -> None:
        """The job's code returned, or it will not run here (given back, expired): its slot
        goes with the fetcher's next report when there is one soon (one round trip for
        many), else it is freed now, from this thread. ``at_once`` for a job given back
        unsettled: no report carries it, and it may run on another worker soon. Safe to
        call twice."""
        with self._lock:
            slot = self._slots.pop(id(work), None)
        if slot is None:
            return

        def keep() -> None:
            with self._lock:
                self._finished.append(slot)

        if at_once or not self._outbox.with_next_send(keep):
            self._free([slot])

    def free_finished(self) -> None:
        """Free the slots of jobs finished since the last report (the Sender, before it
        sends: their outcomes are in the batch, or in one sent already)."""
        with self._lock:
            slots, self._finished = self._finished, []
        if slots:
            self._free(slots)

    def _free(self, slots: list[HeldSlot]) -> None:
        try:
            self._broker.release_slots([(s.queue, s.key, s.holder) for s in slots])
        except Exception as exc:  # they free when their lease expires
            logger.warning("Could not free the concurrency slots of %d finished job(s): "
                           "they free when their lease expires: %s", len(slots), exc)

    def renew(self) -> None:
        """Renew the leases of the slots held by running jobs (with the worker's leases),
        in one broker call."""
        with self._lock:
            slots = list(self._slots.values())
        if not slots:
            return
        kept = self._broker.acquire_slots([(s.queue, s.key, s.limit, s.holder, self._lease)
                                           for s in slots])
        for slot, held in zip(slots, kept, strict=True):
            if not held:
                logger.warning("Lost the concurrency slot of job %s (%r)", slot.holder,
                               slot.key)
