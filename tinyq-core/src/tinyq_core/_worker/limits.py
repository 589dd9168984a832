"""Rate and concurrency limits on the worker side: the step between a job's admission and
its run, in the job's executor thread, taken only for a task with limits (one attribute test
for the others).

* Rate: the job books the next free slot of its key in the broker (``book_rate``). Due now:
  it runs. Later: it is given back, due at its slot, with a header saying which run booked
  it (its retry count), so when it comes back it runs without booking again; a redelivery
  after a crash keeps the header (no second booking), a retry books anew.
* Concurrency: the job takes a leased slot of its key (``acquire_slot``), renewed with the
  worker's leases and freed when the job's code returned; none free: it is given back after a
  short jittered delay, without holding a thread meanwhile.

A job given back this way is not a retry: its retry count and the outcome hooks and counters
are untouched (``tinyq_job_received`` fires again each time it is fetched).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
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
SLOT_WAIT = (0.2, 2.0)  # seconds a job that found no free slot waits before it looks again
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

    def run(self, work: Work, run: Callable[[Work], None]) -> None:
        """``run(work)`` when its limits let it start now; else give the job back."""
        try:
            keys = self._keys(work)
        except Exception as exc:  # the user's key function: the job fails as if it raised
            self._fail(work, exc)
            return
        try:
            slot = self._admit(work, *keys)
        except Exception as exc:  # the broker is down: the job waits, it does not fail
            logger.warning("Could not check the limits of %r, giving it back: %s", work.job,
                           exc)
            self._give_back(work, work.delivery.message.body, random.uniform(*SLOT_WAIT))
            return
        if slot is None:
            return
        try:
            run(work)
        finally:
            self._release(work, slot)

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

    def _admit(self, work: Work, rate_key: str | None, slot_key: str | None
               ) -> HeldSlot | bool | None:
        """The slot taken (True: no concurrency limit), or None when the job was given back."""
        job, limits = work.job, work.task.options.limits
        assert limits is not None
        booked_now = False
        if rate_key is not None and limits.rate_interval is not None and job.headers.get(
                RATE_BOOKED) != str(job.retries):
            wait = self._broker.book_rate(job.queue, rate_key, limits.rate_interval,
                                          limits.rate_burst,
                                          f"{job.id}:{job.retries}")
            booked_now = True
            if wait > RUN_NOW:
                self._give_back(work, self._booked_body(work), wait)
                return None
        if slot_key is None or limits.concurrency is None:
            return True
        slot = HeldSlot(job.queue, slot_key, limits.concurrency, job.id)
        if not self._broker.acquire_slot(slot.queue, slot.key, slot.limit, slot.holder,
                                         self._lease):
            # A slot in time booked just now is kept: the job does not book again.
            body = self._booked_body(work) if booked_now else work.delivery.message.body
            self._give_back(work, body, random.uniform(*SLOT_WAIT))
            return None
        with self._lock:
            self._slots[id(work)] = slot
        return slot

    def _booked_body(self, work: Work) -> bytes:
        """The job's body marked as having its rate slot booked (for this run)."""
        job = work.job
        headers = {**job.headers, RATE_BOOKED: str(job.retries)}
        return self._codec.encode_job(attrs.evolve(job, headers=headers))

    def _give_back(self, work: Work, body: bytes, delay: float) -> None:
        if self._held.take_back(work):  # else a stop gave it back already
            logger.debug("Job %r waits %.3fs for its limits", work.job, delay)
            self._outbox.put(RetryJob(work.delivery, body, delay))

    def _release(self, work: Work, slot: HeldSlot | bool) -> None:
        """The job's code returned: its slot goes with the fetcher's next report when there
        is one soon (one round trip for many), else it is freed now, from this thread."""
        if not isinstance(slot, HeldSlot):
            return
        with self._lock:
            self._slots.pop(id(work), None)
        def keep() -> None:
            with self._lock:
                self._finished.append(slot)

        if not self._outbox.with_next_send(keep):
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
        """Renew the leases of the slots held by running jobs (with the worker's leases)."""
        with self._lock:
            slots = list(self._slots.values())
        for slot in slots:
            if not self._broker.acquire_slot(slot.queue, slot.key, slot.limit, slot.holder,
                                             self._lease):
                logger.warning("Lost the concurrency slot of job %s (%r)", slot.holder,
                               slot.key)

