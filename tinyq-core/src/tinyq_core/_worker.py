"""The worker: reserves jobs in batches, runs them on an executor, and reports back in batches.

Threads and their jobs:

* the fetcher (the thread that calls ``run``) reserves up to the number of free slots plus a
  prefetch (by default sized by how long jobs take, see ``adaptive_prefetch``), decodes each
  message, dead-letters bad ones and submits the rest;
* the executor's threads run jobs; a finished job becomes an *outcome* (result plus ack, retry,
  or dead letter) in the outbox. The fetcher sends the whole outbox with its next read (group
  commit: under load many outcomes share one round trip); only while the fetcher blocks on an
  empty queue does a finishing job send the outbox itself, so an idle worker reports at once;
* the housekeeper renews the leases of held jobs, enforces task timeouts, and runs the broker's
  recovery of expired leases;
* the mover moves delayed jobs to their queues when due, sleeping until the next one is due
  (the broker wakes it when a sooner one is added).

A job is acknowledged only after its result was stored. Nothing is acknowledged before it ran:
a crash at any point leaves the job leased, and the broker delivers it again after the lease.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import random
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import BadMessage, JobTimeout, Retry
from ._types import Delivery, Job, Result, SettleRequest

if TYPE_CHECKING:
    from ._app import Application
    from ._interfaces import Executor
    from ._task import Task

logger = logging.getLogger("tinyq.worker")

POLL_SECONDS = 1.0  # longest a blocking reserve waits; bounds how fast a stop is noticed
LINGER = 0.002  # seconds a full worker waits for more finished jobs to report together
PREFETCH_WAIT = 0.05  # seconds a prefetched job may wait for a slot, about (adaptive prefetch)
MAX_BACKOFF = 5.0


def adaptive_prefetch(concurrency: int, job_seconds: float | None, stuck: int = 0) -> int:
    """The default prefetch: the jobs that free slots take in about PREFETCH_WAIT, from 1 to
    2 * concurrency (Dramatiq's default). Short jobs get a deep prefetch, so one round trip
    reports and reserves many jobs and no thread waits for the next batch; long jobs get 1, so
    a worker does not hoard jobs that another worker could start now. ``job_seconds`` is the
    average run time so far (None before any job finished: concurrency // 4); ``stuck`` slots
    run a job already far longer than that, so they free no slot soon."""
    if job_seconds is None:
        return max(1, concurrency // 4)
    wanted = (concurrency - stuck) * PREFETCH_WAIT / max(job_seconds, 1e-6)
    return max(1, min(2 * concurrency, int(wanted)))


@attrs.define(eq=False)
class _Work:
    """One job this worker holds, from reservation until its outcome is flushed."""

    delivery: Delivery
    job: Job
    task: Task[Any, Any]
    thread_id: int | None = None
    started: float | None = None  # monotonic time the job started running
    deadline: float | None = None
    in_user_code: bool = False
    finished: bool = False  # an outcome was decided (by the job, a timeout, or a cold stop)


@attrs.frozen
class _Outcome:
    delivery: Delivery
    result: Result | None = None
    retry_body: bytes | None = None
    retry_delay: float = 0.0
    dead_reason: str | None = None
    error: str = ""


class Worker:
    """Runs jobs from ``queues`` (in priority order) with ``concurrency`` slots."""

    def __init__(
        self,
        app: Application,
        *,
        concurrency: int = 8,
        queues: Sequence[str] | None = None,
        prefetch: int | None = None,
        shutdown_timeout: float | None = None,
        executor: str = "thread",
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.app = app
        self.concurrency = concurrency
        self.queues = list(queues or ["default"])
        self.prefetch = prefetch  # None: adaptive_prefetch
        self.shutdown_timeout = shutdown_timeout
        self.executor: Executor[_Work] = app.registry.executor(executor)
        self._inline = self.executor.inline
        self._job_seconds: float | None = None  # a running average of the jobs' run time
        self._lock = threading.Condition()
        self._held: set[_Work] = set()
        self._zombies: set[_Work] = set()  # timed out, but the thread has not returned yet
        self._outbox: list[_Outcome] = []
        self._flush_lock = threading.Lock()
        # The fetcher sends the outbox soon: true while it runs, except during a blocking read
        # and the shutdown. Finishing jobs then leave their outcomes to it (see _complete).
        self._fetcher_reports = False
        self._queue_kept_up = False  # the last read got all it asked for
        self._warm = threading.Event()
        self._cold = threading.Event()
        self._done = threading.Event()
        self._keeper_wake = threading.Event()
        self._local = threading.local()
        self._broker_down = False
        self.processed = 0

    # -- control -----------------------------------------------------------------------------

    def stop(self, cold: bool = False) -> None:
        """Ask the worker to stop: warm (finish running jobs) or cold (give them back)."""
        (self._cold if cold else self._warm).set()
        with self._lock:
            self._lock.notify_all()

    def install_signal_handlers(self) -> None:
        """First SIGINT/SIGTERM: warm shutdown. The second: cold shutdown."""

        def handle(signum: int, frame: FrameType | None) -> None:
            if not self._warm.is_set():
                logger.warning("Received stop signal, warm shutdown...")
                self.stop()
            else:
                logger.warning("Received second stop signal, cold shutdown...")
                self.stop(cold=True)

        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)

    def _capacity(self) -> int:
        """How many jobs this worker may hold: its slots plus the prefetch. Called with the
        lock held."""
        if self._inline:
            return 1
        if self.prefetch is not None:
            return self.concurrency + self.prefetch
        average = self._job_seconds
        stuck = 0
        if average is not None:
            # A job running much longer than the average holds its slot: after short jobs, a
            # few long ones must not leave the deep prefetch of the short ones in place.
            since = time.monotonic() - max(PREFETCH_WAIT, 4 * average)
            stuck = sum(1 for w in self._held if w.started is not None and w.started < since
                        and not w.finished)
        return self.concurrency + adaptive_prefetch(self.concurrency, average, stuck)

    # -- main loop ---------------------------------------------------------------------------

    def run(self, burst: bool = False) -> int:
        """Work until stopped (or, with ``burst``, until nothing is ready or running).

        Returns 0 after a warm stop or an emptied burst, 1 after a cold stop."""
        broker = self.app.broker
        self.app.results  # noqa: B018 - resolve the backend before jobs need it
        codec = self.app.codec
        if codec.serializer.name == "cloudpickle" and not codec.signs:
            logger.warning(
                "SECURITY: serializer 'cloudpickle' without a secret_key: anyone who can write "
                "to the broker can run code on this worker. Set Application(secret_key=...) "
                "or use the json serializer."
            )
        self.executor.start(self.concurrency, self._execute)
        keeper = threading.Thread(target=self._housekeeping, name="Housekeeper", daemon=True)
        keeper.start()
        mover = threading.Thread(target=self._move_delayed, name="Mover", daemon=True)
        mover.start()
        backoff = 0.0
        self._fetcher_reports = True
        try:
            while not (self._warm.is_set() or self._cold.is_set()):
                if backoff:
                    self._warm.wait(backoff)
                try:
                    if not self._fetch_once(broker, burst):
                        break
                    if self._broker_down:
                        logger.warning("Broker is reachable again, resuming")
                        self._broker_down = False
                    backoff = 0.0
                except Exception as exc:
                    backoff = min(MAX_BACKOFF, backoff * 2 or 0.1)
                    self._report_broker_error(exc)
            return self._shut_down()
        finally:
            self._done.set()
            self._keeper_wake.set()
            keeper.join(timeout=5)

    def _fetch_once(self, broker: Any, burst: bool) -> bool:
        """Report finished jobs and reserve the next batch in one broker call, and submit it;
        False when a burst has nothing left."""
        with self._lock:
            capacity = self._capacity()
            free = capacity - len(self._held) - len(self._zombies)
            if free <= 0 and not self._outbox:
                # Full: finishing jobs leave their outcomes for us instead of flushing them,
                # so the report and the next reserve share one round trip. After the first
                # one, linger a moment for more (up to a slot per thread, or the prefetch
                # when smaller): a bigger batch for the same round trip.
                goal = min(self.concurrency, capacity - self.concurrency)
                if self._lock.wait(POLL_SECONDS):
                    self._lock.wait_for(lambda: len(self._outbox) >= goal, LINGER)
                return True
        if burst:
            broker.move_due(self.queues)
        # While the queue keeps up (the last read got all it asked for), first a read that does
        # not block: jobs finishing meanwhile leave their outcomes for the next round trip
        # (fewer, larger batches). A queue that looks empty gets the blocking read, during
        # which finishing jobs report themselves, so no result waits on it.
        blocking = free > 0 and not burst
        deliveries = []
        if self._queue_kept_up or not blocking:
            deliveries = self._send_and_reserve(max(0, free), 0)
        if not deliveries and blocking:
            deliveries = self._send_and_reserve(free, POLL_SECONDS)
        self._queue_kept_up = free > 0 and len(deliveries) >= free
        for delivery in deliveries:
            self._accept(delivery)
        if deliveries:
            # Let a woken job thread take the GIL now, before this thread builds its next
            # request: the job starts at once instead of after that work.
            time.sleep(0)
        if burst and not deliveries and free > 0:
            with self._lock:
                if self._held or self._outbox:
                    self._lock.wait(0.05)
                    return True
            # Nothing held or unreported: look once more (a retry may have become due).
            broker.move_due(self.queues)
            deliveries = broker.reserve(self.queues, free, 0)
            for delivery in deliveries:
                self._accept(delivery)
            return bool(deliveries)
        return True

    def _report_broker_error(self, exc: Exception) -> None:
        if not self._broker_down:
            self._broker_down = True
            logger.error("Broker error, retrying with backoff: %s", exc,
                         exc_info=logger.isEnabledFor(logging.DEBUG))

    def _accept(self, delivery: Delivery) -> None:
        """Decode a delivery; dead-letter it when it cannot run, else submit it."""
        app = self.app
        size, limit = len(delivery.message.body), app.max_message_size
        if limit is not None and size > limit:
            self._reject(delivery, f"oversized message: {size:,} bytes, more than "
                                   f"max_message_size ({limit:,})")
            return
        try:
            job = app.codec.decode_job(delivery.message.body, delivery.queue)
        except BadMessage as exc:
            self._reject(delivery, exc.reason)
            return
        except Exception as exc:  # a serializer that raised something else: still bad input
            self._reject(delivery, f"undecodable: {type(exc).__name__}: {exc}")
            return
        task = app.tasks.get(job.task_name)
        if task is None:
            self._reject(delivery, f"unknown task {job.task_name!r}: no task of that name is "
                                   "registered on the worker's application")
            return
        # A delivery that never reported back means its worker died while running it. More
        # than max_retries + 1 such deliveries is a crash loop: stop handing it out.
        if delivery.attempts - 1 > task.options.max_retries + 1:
            self._reject(delivery, f"crash loop: delivered {delivery.attempts} times without "
                                   "finishing (the job kills or hangs its worker)", "CrashLoop")
            return
        work = _Work(delivery, job, task)
        with self._lock:
            self._held.add(work)
        self.executor.submit(work)

    def _reject(self, delivery: Delivery, reason: str, kind: str = "BadMessage") -> None:
        logger.error("Dead-lettering message %s from queue %r: %s",
                     delivery.id, delivery.queue, reason)
        result = self.app._failure(delivery.id, delivery.queue, kind, f"dead-lettered: {reason}")
        try:
            self.app.results.store([result], self.app.result_ttl)
            self.app.broker.dead_letter(delivery, reason)
        except Exception as exc:  # still leased: recovered and rejected again after its lease
            self._report_broker_error(exc)

    # -- running a job -----------------------------------------------------------------------

    def _execute(self, work: _Work) -> None:
        job, task = work.job, work.task
        with self._lock:
            if work.finished:  # given back by a cold stop before it started
                return
            work.thread_id = threading.get_ident()
            work.started = started = time.monotonic()
            if task.options.timeout is not None:
                work.deadline = started + task.options.timeout
                self._keeper_wake.set()
            work.in_user_code = True
        if logger.isEnabledFor(logging.INFO):
            logger.info("Got a job: %r", job)
        value: Any = None
        error: BaseException | None = None
        try:
            try:
                if task.is_async:
                    value = self._event_loop().run_until_complete(task.fn(*job.args, **job.kwargs))
                else:
                    value = task.fn(*job.args, **job.kwargs)
            except BaseException as exc:
                error = exc
            finally:
                self._leave_user_code(work)
        except JobTimeout as exc:  # a timeout that arrived just after the job returned
            error = error or exc
        # Unlocked: threads may race on this average, and losing one sample does not matter.
        took, average = time.monotonic() - started, self._job_seconds
        self._job_seconds = took if average is None else average + (took - average) * 0.1
        self._complete(work, value, error)
        if logger.isEnabledFor(logging.INFO):
            logger.info("Finish run job %r", job)

    def _leave_user_code(self, work: _Work) -> None:
        with self._lock:
            work.in_user_code = False
            timed_out = work.finished
        if timed_out and work.thread_id is not None:
            # Cancel a pending asynchronous JobTimeout so it cannot land in our own code.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(work.thread_id), None)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._local.loop = asyncio.new_event_loop()
        return loop

    def _complete(self, work: _Work, value: Any, error: BaseException | None) -> None:
        with self._lock:
            if work.finished:  # a timeout or cold stop already decided this job
                self._zombies.discard(work)
                self._lock.notify_all()
                return
            work.finished = True
        try:
            outcome = self._decide(work, value, error)
        except BaseException as exc:  # reporting failed (an exotic exception): still report
            outcome = self._unreportable(work, exc)
        with self._lock:
            self._held.discard(work)
            self._outbox.append(outcome)
            self.processed += 1
            self._lock.notify_all()
            fetcher_reports = self._fetcher_reports
        if not fetcher_reports:
            self._flush_quietly()

    def _decide(self, work: _Work, value: Any, error: BaseException | None) -> _Outcome:
        """Turn a job's return value or exception into what the broker must be told."""
        app, job, opts, delivery = self.app, work.job, work.task.options, work.delivery
        if error is None:
            result = app._success(job, value) if opts.store_result else None
            return _Outcome(delivery, result=result)
        retryable = isinstance(error, Retry) or isinstance(error, opts.retry_on)
        if retryable and job.retries < opts.max_retries:
            delay = error.delay if isinstance(error, Retry) and error.delay is not None else (
                self._backoff(opts.retry_backoff, opts.retry_backoff_max, job.retries)
            )
            if logger.isEnabledFor(logging.INFO):
                logger.info("Retrying %r in %.2fs (retry %d of %d) after %s", job, delay,
                            job.retries + 1, opts.max_retries, type(error).__name__)
            retried = attrs.evolve(job, retries=job.retries + 1)
            return _Outcome(delivery, retry_body=app.codec.encode_job(retried), retry_delay=delay)
        result = app._exception_result(job, error)
        from ._app import describe_exception

        text = describe_exception(error)
        logger.error("Job %r failed: %s", job, text)
        return _Outcome(
            delivery,
            result=result,
            dead_reason=f"failed after {job.retries + 1} attempt(s)",
            error=text,
        )

    def _unreportable(self, work: _Work, exc: BaseException) -> _Outcome:
        text = f"the job's outcome could not be reported ({type(exc).__name__})"
        logger.error("Job %r failed: %s", work.job, text)
        result = self.app._failure(work.job.id, work.job.queue, type(exc).__name__, text)
        return _Outcome(work.delivery, result=result, dead_reason="failed", error=text)

    @staticmethod
    def _backoff(base: float, cap: float, retries: int) -> float:
        # The n-th retry (n from 0) waits about base * 2**n, with +-20 % jitter, at most cap.
        return float(min(cap, base * (2**retries) * random.uniform(0.8, 1.2)))

    # -- reporting back ----------------------------------------------------------------------

    def _flush_quietly(self) -> None:
        """Flush from a job or housekeeping thread: on a broker error the outcomes stay in the
        outbox, and the fetcher sends them again with backoff."""
        try:
            self._flush()
        except Exception as exc:
            self._report_broker_error(exc)

    def _flush(self) -> None:
        """Send every pending outcome in as few broker operations as possible; one thread at a
        time, and whoever holds the lock also takes what others added meanwhile."""
        while True:
            if not self._flush_lock.acquire(blocking=False):
                return
            try:
                while True:
                    with self._lock:
                        batch, self._outbox = self._outbox, []
                    if not batch:
                        break
                    try:
                        self._send(batch)
                    except BaseException:
                        with self._lock:  # keep them: they are sent again on the next flush
                            self._outbox[:0] = batch
                        raise
            finally:
                self._flush_lock.release()
            with self._lock:
                if not self._outbox:
                    return

    def _send_and_reserve(self, count: int, timeout: float) -> list[Delivery]:
        """Send the outbox and reserve up to ``count`` jobs, in one round trip where the
        broker can; on an error the outbox keeps what was not sent."""
        with self._lock:
            batch, self._outbox = self._outbox, []
            self._fetcher_reports = timeout <= 0
        try:
            return self._send(batch, count, timeout)
        except BaseException:
            with self._lock:
                self._outbox[:0] = batch
            raise
        finally:
            with self._lock:
                self._fetcher_reports = not self._warm.is_set() and not self._cold.is_set()

    def _send(self, batch: list[_Outcome], count: int = 0, timeout: float = 0) -> list[Delivery]:
        broker, app = self.app.broker, self.app
        plain = [o for o in batch if o.retry_body is None and o.dead_reason is None]
        if len(plain) < len(batch):  # the rare paths: retries and dead letters
            failed = [o.result for o in batch if o not in plain and o.result is not None]
            if failed:
                app.results.store(failed, app.result_ttl)
            for o in batch:
                if o.retry_body is not None:
                    broker.nack(o.delivery, o.retry_delay, o.retry_body)
                elif o.dead_reason is not None:
                    broker.dead_letter(o.delivery, o.dead_reason, o.error)
        results = [o.result for o in plain if o.result is not None]
        if count <= 0 and not plain:
            return []
        if results and app._explicit_results is not None:
            app.results.store(results, app.result_ttl)
            results = []
        return broker.settle_and_reserve(SettleRequest(
            results=results, result_ttl=app.result_ttl, acks=[o.delivery for o in plain],
            queues=self.queues, count=count, timeout=timeout,
        ))

    # -- housekeeping ------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        broker = self.app.broker
        renew_every = max(0.05, broker.visibility_timeout / 3)
        recover_every = max(0.05, min(1.0, broker.visibility_timeout / 4))
        next_renew = next_recover = time.monotonic()
        while not self._done.is_set():
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + renew_every
                    with self._lock:
                        leased = [w.delivery for w in self._held]
                        leased += [o.delivery for o in self._outbox]
                    if leased:
                        broker.renew(leased)
                if now >= next_recover:
                    next_recover = now + recover_every
                    broker.recover(self.queues)
            except Exception as exc:
                self._report_broker_error(exc)
            next_deadline = self._enforce_timeouts()
            wake = min(next_renew, next_recover, next_deadline or float("inf"))
            # Woken early when a job with a timeout starts, so its deadline is kept.
            self._keeper_wake.wait(max(0.0, wake - time.monotonic()))
            self._keeper_wake.clear()

    def _move_delayed(self) -> None:
        """Move due delayed jobs to their queues, sleeping until the next one is due; the
        broker wakes it early when a sooner delayed job is added."""
        broker = self.app.broker
        while not self._done.is_set():
            try:
                due_in = broker.move_due(self.queues)
                wait = min(1.0, 1.0 if due_in is None else due_in)
                if not broker.wait_for_delayed(self.queues, wait):
                    self._done.wait(wait)  # a broker that cannot wake the mover
            except Exception as exc:
                if self._done.is_set():
                    return  # the worker stopped (and its app may be closed): not an outage
                self._report_broker_error(exc)
                self._done.wait(1.0)

    def _enforce_timeouts(self) -> float | None:
        """Fail jobs past their deadline; return the monotonic time of the next deadline."""
        now = time.monotonic()
        expired: list[_Work] = []
        next_deadline: float | None = None
        with self._lock:
            for work in self._held:
                if work.deadline is None or work.finished:
                    continue
                if work.deadline <= now:
                    work.finished = True
                    expired.append(work)
                    if work.in_user_code and work.thread_id is not None:
                        # Interrupts Python code; a thread blocked in C keeps its slot until
                        # the call returns (see docs/worker.md).
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(work.thread_id), ctypes.py_object(JobTimeout)
                        )
                        self._zombies.add(work)
                elif next_deadline is None or work.deadline < next_deadline:
                    next_deadline = work.deadline
        for work in expired:
            timeout = work.task.options.timeout
            logger.error("Job %r exceeded its timeout of %ss", work.job, timeout)
            error = JobTimeout(f"job exceeded its timeout of {timeout}s")
            outcome = self._decide(work, None, error)
            with self._lock:
                self._held.discard(work)
                self._outbox.append(outcome)
                self._lock.notify_all()
        if expired:
            self._flush_quietly()
        return next_deadline

    # -- shutdown ----------------------------------------------------------------------------

    def _shut_down(self) -> int:
        """Give back unstarted jobs, let running ones finish (warm) or give them back (cold)."""
        with self._lock:  # from now on, finishing jobs report themselves
            self._fetcher_reports = False
        self._retry_flush()
        for work in self.executor.take_pending():
            self._give_back(work)
        deadline = None if self.shutdown_timeout is None else (
            time.monotonic() + self.shutdown_timeout)
        with self._lock:
            while self._held and not self._cold.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    logger.warning("Shutdown timeout reached, cold shutdown...")
                    self._cold.set()
                    break
                self._lock.wait(0.1)
            running = [w for w in self._held if not w.finished]
        cold = self._cold.is_set()
        if cold:
            for work in running:
                self._give_back(work)
        self._retry_flush()
        # Threads stuck in a timed-out job (in C code) cannot be joined: do not wait for them.
        self.executor.shutdown(wait=not cold and not self._zombies)
        logger.warning("Exit workers.")
        return 1 if cold else 0

    def _give_back(self, work: _Work) -> None:
        with self._lock:
            if work.finished:
                return
            work.finished = True
            self._held.discard(work)
        try:
            self.app.broker.nack(work.delivery)
        except Exception as exc:  # its lease expires and the broker delivers it again
            logger.error("Could not give back %r (it will be redelivered after its lease): %s",
                         work.job, exc)

    def _retry_flush(self) -> None:
        for attempt in range(5):
            try:
                self._flush()
                return
            except Exception as exc:
                self._report_broker_error(exc)
                time.sleep(0.2 * (attempt + 1))
