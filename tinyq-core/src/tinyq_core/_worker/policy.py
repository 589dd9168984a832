"""What becomes of a delivery: admitted to run, or dead-lettered at once; and once run,
acknowledged, retried later, or dead-lettered. Pure functions over values: no threads, no
broker, so each rule is tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._backoff import Backoff
from .._codec import Codec, Outcome, Unverified
from .._errors import BadMessage, JobTimeout, Retry, describe_exception
from .._types import Delivery, Job, Result
from .unique import KeptLock, keeping_lock
from .workflows import NextSteps, carrying_next_steps

if TYPE_CHECKING:
    from .._task import Task, TaskOptions


@attrs.frozen
class AckJob:
    """The job finished: store its result (if any), then acknowledge it. ``kind``:
    ``"cancelled"`` or ``"expired"`` when that is how it finished, else empty."""

    delivery: Delivery
    result: Result | None = None
    unique: KeptLock | None = None  # a unique job's lock, kept a while after (unique.py)
    kind: str = ""
    workflow: NextSteps | None = None  # what follows in the job's workflow (workflows.py)


@attrs.frozen
class RetryJob:
    """Give the job back to run again after ``delay`` seconds, as ``body`` (its retry count
    one higher)."""

    delivery: Delivery
    body: bytes
    delay: float


@attrs.frozen
class DeadLetterJob:
    """The job failed for good: store the failure ``result`` (if any), then dead-letter it.
    Not ``verified``: the message failed its signature check, so the job id it carries is
    only a claim, and nothing stored under that id may be touched (no result either)."""

    delivery: Delivery
    result: Result | None
    reason: str
    error: str = ""
    verified: bool = True
    unique: KeptLock | None = None  # a unique job's lock, kept a while after (unique.py)
    workflow: NextSteps | None = None  # what follows in the job's workflow (workflows.py)


Settlement = AckJob | RetryJob | DeadLetterJob


@attrs.frozen
class Admitted:
    """A delivery that decoded to a job of a known task, fit to run."""

    job: Job
    task: Task[Any, Any]


def crashes(delivery: Delivery) -> int:
    """Deliveries of this message that never reported back: their worker died running it."""
    return delivery.attempts - 1


def admit(
    delivery: Delivery,
    codec: Codec,
    tasks: Mapping[str, Task[Any, Any]],
    max_message_size: int | None,
) -> Admitted | DeadLetterJob:
    """Decode a delivery; a message that cannot or must not run is dead-lettered, with why."""
    size = len(delivery.message.body)
    if max_message_size is not None and size > max_message_size:
        return reject(delivery, codec, f"oversized message: {size:,} bytes, more than "
                                        f"max_message_size ({max_message_size:,})")
    try:
        job = codec.decode_job(delivery.message.body, delivery.queue, delivery.id)
    except Unverified as exc:
        # Anyone who can write to the broker can write this: it gets no say over the job
        # whose id it claims (that job's result and its mark stay as they are).
        return DeadLetterJob(delivery, None, exc.reason, verified=False)
    except BadMessage as exc:
        return reject(delivery, codec, exc.reason)
    except Exception as exc:  # a serializer that raised something else: still bad input
        return reject(delivery, codec, f"undecodable: {type(exc).__name__}: {exc}")
    task = tasks.get(job.task_name)
    if task is None:
        return failing(job, codec, reject(
            delivery, codec, f"unknown task {shorten(job.task_name)}: no task of that name is "
            "registered on the worker's application"))
    # More crashes than the task's runs allow (max_retries + 1) is a crash loop: stop here.
    if crashes(delivery) > task.options.max_retries + 1:
        return failing(job, codec, reject(
            delivery, codec, f"crash loop: delivered {delivery.attempts} times without "
            "finishing (the job kills or hangs its worker)", kind="CrashLoop"))
    return Admitted(job, task)


def failing(job: Job, codec: Codec, rejected: DeadLetterJob) -> DeadLetterJob:
    """``rejected``, carrying its workflow's failure when ``job`` is in one (else it hangs)."""
    if job.workflow is None:
        return rejected
    return carrying_next_steps(rejected, job, None, None, codec)


NAME_SHOWN = 100  # characters of a name quoted in a reason; the rest is only counted


def shorten(name: str) -> str:
    """``repr(name)``, cut after NAME_SHOWN characters: a message may carry a name of any
    length, and the whole of it would end up in the log line and the dead letter's reason."""
    if len(name) <= NAME_SHOWN:
        return repr(name)
    return f"{name[:NAME_SHOWN]!r}... ({len(name):,} characters)"


def reject(
    delivery: Delivery, codec: Codec, reason: str, kind: str = "BadMessage"
) -> DeadLetterJob:
    """Dead-letter a message that never ran; its producer's ``result()`` raises with why."""
    outcome = Outcome.failure(kind, f"dead-lettered: {reason}")
    return DeadLetterJob(delivery, codec.encode_result(delivery.id, delivery.queue, outcome),
                         reason)


def retry_delay(error: BaseException, options: TaskOptions, retries: int) -> float:
    """``Retry(delay=...)`` wins; else the task's backoff for its ``retries``-th retry."""
    if isinstance(error, Retry) and error.delay is not None:
        return error.delay
    return Backoff(options.retry_backoff, options.retry_backoff_max, jitter=0.2).delay(retries)


def timed_out(timeout: float | None) -> JobTimeout:
    """The error of a job past its ``timeout``, worded the same whoever noticed it first: the
    housekeeper, or the event loop of an ``async def`` job."""
    return JobTimeout(f"job exceeded its timeout of {timeout}s")


def settle(
    delivery: Delivery,
    job: Job,
    options: TaskOptions,
    codec: Codec,
    value: Any,
    error: BaseException | None,
    max_result_size: int | None = None,
) -> Settlement:
    """Turn a job's return value or exception into what the broker must be told. A result
    over ``max_result_size`` bytes fails the job at once: retrying cannot make it smaller.
    A finished unique job's settlement carries its lock, to keep (see unique.py)."""
    settlement = keeping_lock(
        _settle(delivery, job, options, codec, value, error, max_result_size), job)
    if job.workflow is None:
        return settlement
    return carrying_next_steps(settlement, job, value, error, codec)


def _settle(
    delivery: Delivery,
    job: Job,
    options: TaskOptions,
    codec: Codec,
    value: Any,
    error: BaseException | None,
    max_result_size: int | None = None,
) -> Settlement:
    if error is None:
        if not options.store_result:
            return AckJob(delivery)
        result = codec.encode_result(job.id, job.queue, Outcome.success(value))
        if max_result_size is not None and len(result.body) > max_result_size:
            text = (f"result of {len(result.body):,} bytes is over max_result_size "
                    f"({max_result_size:,})")
            outcome = Outcome.failure("ResultTooLarge", f"ResultTooLarge: {text}; store large "
                                      "data elsewhere and return a reference (a path, a URL, "
                                      "a key), or raise the limit")
            return DeadLetterJob(first_sent(delivery, job, codec),
                                 codec.encode_result(job.id, job.queue, outcome), text,
                                 outcome.error)
        return AckJob(delivery, result)
    retryable = isinstance(error, Retry) or isinstance(error, options.retry_on)
    if retryable and job.retries < options.max_retries:
        retried = attrs.evolve(job, retries=job.retries + 1)
        return RetryJob(delivery, codec.encode_job(retried),
                        retry_delay(error, options, job.retries))
    outcome = Outcome.of_exception(error)
    result = codec.encode_result(job.id, job.queue, outcome)
    if max_result_size is not None and len(result.body) > max_result_size:
        # A failure is reported all the same: shortened, with the reason it was.
        outcome = Outcome.failure(
            outcome.type, f"{outcome.error[:TEXT_KEPT]} [failure of {len(result.body):,} "
            f"bytes shortened: over max_result_size ({max_result_size:,})]",
            outcome.traceback[-TEXT_KEPT:])
        result = codec.encode_result(job.id, job.queue, outcome)
    return DeadLetterJob(first_sent(delivery, job, codec), result,
                         f"failed after {job.retries + 1} attempt(s)", outcome.error)


TEXT_KEPT = 1000  # characters of an error or traceback kept when a failure is shortened


def first_sent(delivery: Delivery, job: Job, codec: Codec) -> Delivery:
    """The delivery of a job that failed for good: the dead letter keeps the job as first
    sent, so that, requeued, it gets its retries again."""
    if not job.retries:
        return delivery
    fresh = codec.encode_job(attrs.evolve(job, retries=0))
    return attrs.evolve(delivery, message=attrs.evolve(delivery.message, body=fresh))


def unsendable(settlement: Settlement, codec: Codec, exc: BaseException) -> DeadLetterJob:
    """The stand-in for a settlement the broker refuses alone while it takes others (a result
    over Redis' proto-max-bulk-len): a failure small enough to store, so that its job fails
    alone instead of wedging the worker's every later report."""
    result = None if isinstance(settlement, RetryJob) else settlement.result
    why = describe_exception(exc)[:TEXT_KEPT]
    if isinstance(settlement, DeadLetterJob) and not settlement.verified:
        # Still nothing under the id it claims (its body may be what the broker refused).
        return DeadLetterJob(settlement.delivery, None, f"{settlement.reason}; {why}",
                             verified=False)
    if result is not None:
        reason = (f"result could not be stored: {why} (a result of {len(result.body):,} "
                  "bytes; the broker takes smaller ones)")
    else:
        reason = f"outcome could not be reported: {why} (the broker takes others)"
    delivery = settlement.delivery
    outcome = Outcome.failure("ResultNotStored" if result is not None else "OutcomeNotReported",
                              f"dead-lettered: {reason}")
    return DeadLetterJob(delivery, codec.encode_result(delivery.id, delivery.queue, outcome),
                         reason, outcome.error)


def unreportable(
    delivery: Delivery, job: Job, codec: Codec, exc: BaseException
) -> DeadLetterJob:
    """When turning the outcome into bytes itself failed (an exotic exception): still report."""
    text = f"the job's outcome could not be reported ({type(exc).__name__})"
    result = codec.encode_result(job.id, job.queue, Outcome.failure(type(exc).__name__, text))
    return DeadLetterJob(delivery, result, "failed", text)
