"""The job runner: runs one held job in an executor thread and puts its settlement in the
outbox. ``async def`` tasks run on an event loop kept per thread (coroutines.py)."""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._codec import Codec
from .._current import RunningJob, job_running
from .._errors import Cancelled, JobTimeout, describe_exception
from .._interfaces import ResultBackend
from .._lifecycle import NO_HOOKS, Hooks
from .._progress import ProgressStore
from .cancels import cancelled_settlement
from .coroutines import ThreadLoops, run_coroutine
from .expiry import expired_settlement
from .held import HeldJobs, Work
from .limits import Limiter
from .logfields import job_fields
from .outbox import Outbox
from .policy import AckJob, DeadLetterJob, RetryJob, Settlement, settle, unreportable
from .workflows import workflow_args

if TYPE_CHECKING:
    from .cancels import CancelWatcher

logger = logging.getLogger("tinyq.worker")
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def outcome_of(settlement: Settlement, error: BaseException | None) -> str:
    """One word for how a run ended, the same the hooks and metrics use."""
    if type(settlement) is AckJob:
        return settlement.kind or "succeeded"
    if type(error) is JobTimeout:
        return "timed_out"
    return "retried" if type(settlement) is RetryJob else "failed"


def log_settlement(work: Work, settlement: Settlement, error: BaseException | None) -> None:
    """The log of a job that failed. Retried: one WARNING line, the traceback only with debug
    logging (a flaky call would otherwise fill the log). Failed for good: ERROR with the
    traceback, the one place an operator sees where the job raised."""
    if type(settlement) is RetryJob and logger.isEnabledFor(logging.WARNING):
        logger.warning("Retrying %r in %.2fs (retry %d of %d) after %s", work.job,
                       settlement.delay, work.job.retries + 1, work.task.options.max_retries,
                       "no error" if error is None else describe_exception(error),
                       exc_info=exc_info(error, logging.DEBUG),
                       extra=job_fields(work, outcome=outcome_of(settlement, error)))
    elif type(settlement) is DeadLetterJob:
        try:
            logger.error("Job %r failed: %s", work.job, settlement.error,
                         exc_info=exc_info(error, logging.ERROR),
                         extra=job_fields(work, outcome=outcome_of(settlement, error)))
        except BaseException:  # a traceback that cannot be formatted must not cost the job
            logger.error("Job %r failed: %s", work.job, settlement.error,
                         extra=job_fields(work))


def report(hooks: Hooks, work: Work, settlement: Settlement, value: Any,
           error: BaseException | None, duration: float) -> None:
    """Call the outcome hooks of a settled job (with at least one implemented: the caller
    tests ``hooks.settles``)."""
    job = work.job
    if type(error) is JobTimeout and work.task.options.timeout is not None:
        hooks.call("tinyq_job_timed_out", job=job, timeout=work.task.options.timeout)
    if type(settlement) is AckJob and settlement.kind == "cancelled":
        hooks.call("tinyq_job_cancelled", job=job, started=True)
    elif type(settlement) is AckJob:
        hooks.call("tinyq_job_succeeded", job=job, value=value, duration=duration)
    elif type(settlement) is RetryJob:
        hooks.call("tinyq_job_retried", job=job, error=error, delay=settlement.delay)
    elif type(settlement) is DeadLetterJob:
        if error is not None:
            hooks.call("tinyq_job_failed", job=job, error=error)
        hooks.call("tinyq_job_dead_lettered", delivery=settlement.delivery, job=job,
                   reason=settlement.reason)


def exc_info(error: BaseException | None, level: int) -> ExcInfo | None:
    """``error``'s traceback for the log when ``level`` is enabled (a timeout's error was
    never raised: it has none, and its one line says it all)."""
    if error is None or error.__traceback__ is None or not logger.isEnabledFor(level):
        return None
    return type(error), error, error.__traceback__


class JobRunner:
    """``run(work)`` is the executor's callback. ``deadline_set`` wakes the housekeeper when
    a job with a timeout starts, so that its deadline is kept."""

    def __init__(
        self,
        held: HeldJobs,
        outbox: Outbox,
        codec: Codec,
        deadline_set: threading.Event,
        max_result_size: int | None = None,
        hooks: Hooks = NO_HOOKS,
        progress: ProgressStore | None = None,
        cancels: CancelWatcher | None = None,
        clock: Callable[[], float] = time.time,
        limiter: Limiter | None = None,
        results: ResultBackend | None = None,
    ) -> None:
        self._limiter = limiter  # frees the slots of limited jobs (limits.py)
        self._results = results  # a chord callback's arguments are read there
        self._hooks = hooks
        self._cancels = cancels  # None: the broker cannot cancel
        self._clock = clock  # the broker's: it decides whether a job expired
        self._store_progress: Callable[[str, str, Any], None] | None = (
            None if progress is None else progress.write)
        self._held = held
        self._outbox = outbox
        self._codec = codec
        self._max_result_size = max_result_size
        self._deadline_set = deadline_set
        self._loops = ThreadLoops()
        self._owe_flush: Callable[[], object] | None = None  # None: put() sends when it must

    def run(self, work: Work) -> None:
        try:
            self._run(work)
        finally:
            self.release_limits(work)

    def release_limits(self, work: Work) -> None:
        """Free the concurrency slot the fetcher took for ``work`` (limits.py), once its code
        returned or it will not run here; nothing for an unlimited job."""
        if self._limiter is not None and work.task.options.limits is not None:
            self._limiter.release(work)

    def _run(self, work: Work) -> None:
        started = self.begin(work)
        if started is None:
            return
        value: Any = None
        error: BaseException | None = None
        # Left only after leave_user_code, when no timeout can land in the reset any more.
        hooks = self._hooks
        with job_running(self.running_job(work)):
            try:
                try:
                    if hooks.run_job:
                        value = hooks.around({"job": work.job}, lambda: self._call(work))
                    else:
                        value = self._call(work)
                except BaseException as exc:
                    error = exc
                finally:
                    self._held.leave_user_code(work, time.monotonic() - started)
            except (JobTimeout, Cancelled) as exc:  # arrived just after the job returned
                error = error or exc
        self.conclude(work, value, error, started)

    def for_loop(self, owe_flush: Callable[[], object],
                 store_progress: Callable[[str, str, Any], None] | None) -> JobRunner:
        """A copy for jobs on an event loop (aloop.py): it never sends the outbox itself
        (``owe_flush`` asks another thread to), and writes progress through
        ``store_progress``, so no broker call blocks the loop."""
        runner = copy.copy(self)
        runner._owe_flush = owe_flush
        runner._store_progress = store_progress
        return runner

    def running_job(self, work: Work) -> RunningJob:
        return RunningJob(work.job, work.delivery.attempts, self._store_progress, work)

    def begin(self, work: Work) -> float | None:
        """Start ``work``: its monotonic start time, or None when it must not run (expired,
        settled here; or given back or cancelled before it started)."""
        job = work.job
        if job.expires is not None and job.expires <= self._clock():
            self._expire(work)
            return None
        if not self._held.begin(work):  # given back by a stop (or cancelled) before it started
            return None
        if work.deadline is not None:
            self._deadline_set.set()
        if logger.isEnabledFor(logging.INFO):
            logger.info("Got a job: %r", job, extra=job_fields(work))
        return time.monotonic()

    def conclude(self, work: Work, value: Any, error: BaseException | None,
                 started: float) -> None:
        """Settle a job that ran (unless a timeout or a cold stop decided it already): log,
        outcome hooks, and its settlement into the outbox."""
        job, hooks = work.job, self._hooks
        if not self._held.finish(work):  # a timeout or a cold stop decided it already
            return
        try:
            settlement = self._settle(work, value, error)
        except BaseException as exc:  # an exotic exception that cannot even be described
            settlement = unreportable(work.delivery, job, self._codec, exc)
        log_settlement(work, settlement, error)
        duration = time.monotonic() - started
        if hooks.settles:
            report(hooks, work, settlement, value, error, duration)
        self._put(settlement, work)
        if logger.isEnabledFor(logging.INFO):
            outcome = outcome_of(settlement, error)
            logger.info("Finish run job %r: %s in %.3fs", job, outcome, duration,
                        extra=job_fields(work, outcome=outcome, duration=round(duration, 6)))

    def _put(self, settlement: Settlement, work: Work) -> None:
        if self._outbox.put(settlement, work, flush=self._owe_flush is None):
            assert self._owe_flush is not None
            self._owe_flush()

    def _settle(self, work: Work, value: Any, error: BaseException | None) -> Settlement:
        """What the broker is told; a cancelled job that did not return a value (it raised,
        or returned None) ends as cancelled, and is never retried."""
        job = work.job
        if work.cancelled and error is None and value is None:
            return cancelled_settlement(work, self._codec, "stopped after its cancel")
        settlement = settle(work.delivery, job, work.task.options, self._codec, value, error,
                            self._max_result_size)
        if error is None:
            return settlement
        cancelled = work.cancelled
        if not cancelled and type(settlement) is RetryJob and self._cancels is not None:
            try:  # the rare path: one look, so a retry never outlives a cancel
                cancelled = self._cancels.requested(job)
            except Exception as exc:  # the watcher flags the retry when it is delivered
                logger.debug("Could not look for a cancel request of %r: %s", job, exc)
        if cancelled:
            return cancelled_settlement(work, self._codec, "cancelled while it ran", error)
        return settlement

    def _expire(self, work: Work) -> None:
        if not self._held.finish(work):  # given back by a stop meanwhile
            return
        settlement = expired_settlement(work, self._codec, self._clock())
        if self._hooks.settles:
            self._hooks.call("tinyq_job_expired", job=work.job)
        self._put(settlement, work)

    def call_args(self, work: Work) -> tuple[Any, ...]:
        """The positional arguments of ``work``'s call: a workflow step's come with the
        previous step's result (or a chord's members' results, read from the backend)."""
        job = work.job
        return job.args if job.workflow is None else workflow_args(job, self._codec,
                                                                   self._results)

    def _call(self, work: Work) -> Any:
        job, task = work.job, work.task
        args = self.call_args(work)
        if task.is_async:
            return run_coroutine(self._loops.get(), task.fn(*args, **job.kwargs),
                                 work.deadline, task.options.timeout,
                                 lambda stop: self._held.set_stopper(work, stop))
        return task.fn(*args, **job.kwargs)
