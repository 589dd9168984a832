"""The worker's outcome policy and the result envelope, as pure functions: no threads, no
worker, no broker."""

from __future__ import annotations

import pytest

from tinyq_core import Application, JobFailed, Retry
from tinyq_core._backoff import Backoff
from tinyq_core._codec import Codec, Outcome, _context
from tinyq_core._serializers import JSONSerializer
from tinyq_core._task import TaskOptions
from tinyq_core._worker.policy import (
    AckJob,
    Admitted,
    DeadLetterJob,
    RetryJob,
    admit,
    reject,
    retry_delay,
    settle,
    unreportable,
)
from tinyq_core.plugin import Delivery, Job, Message

CODEC = Codec(JSONSerializer(), secret_key="k")
APP = Application("memory://")


@APP.task(name="t.add", max_retries=2)
def add(m: int, n: int) -> int:
    return m + n


def delivery_of(job: Job, attempts: int = 1, body: bytes | None = None) -> Delivery:
    body = CODEC.encode_job(job) if body is None else body
    return Delivery(Message(job.id, job.queue, body), attempts, "r-1")


def test_admit_gives_the_job_and_its_task() -> None:
    job = Job("j1", "t.add", (1, 2), queue="default")
    verdict = admit(delivery_of(job), CODEC, APP.tasks, 1024)
    assert verdict == Admitted(job, add)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"x" * 2000, "oversized message: 2,000 bytes, more than max_message_size (1,024)"),
        (CODEC.encode([1], _context("job", "j1", "default")), "malformed: expected an object"),
        (CODEC.encode_job(Job("j1", "t.nope")), "unknown task 't.nope'"),
    ],
)
def test_admit_dead_letters_what_cannot_run(body: bytes, reason: str) -> None:
    d = delivery_of(Job("j1", "t.add"), body=body)
    verdict = admit(d, CODEC, APP.tasks, 1024)
    assert isinstance(verdict, DeadLetterJob)
    assert verdict.delivery is d and reason in verdict.reason
    assert verdict.result is not None and verdict.verified
    outcome = CODEC.decode_result(verdict.result.body, "j1")
    assert (outcome.ok, outcome.type) == (False, "BadMessage")
    assert outcome.error == f"dead-lettered: {verdict.reason}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not signed", "message is not signed"),
        (CODEC.encode_job(Job("j2", "t.add")), "copied under another job id"),
        (CODEC.encode_job(Job("j1", "t.add", queue="other")), "into another queue"),
    ],
)
def test_admit_dead_letters_an_unverified_message_without_a_result(
    body: bytes, reason: str
) -> None:
    # Its job id is only a claim: nothing may be stored under it.
    verdict = admit(delivery_of(Job("j1", "t.add"), body=body), CODEC, APP.tasks, None)
    assert isinstance(verdict, DeadLetterJob) and reason in verdict.reason
    assert (verdict.result, verdict.verified) == (None, False)


def test_admit_stops_a_crash_loop_after_max_retries_plus_one_crashes() -> None:
    job = Job("j1", "t.add", (1, 2))
    # max_retries=2: up to 3 deliveries may crash (4 in all) before the loop is called.
    assert isinstance(admit(delivery_of(job, attempts=4), CODEC, APP.tasks, None), Admitted)
    verdict = admit(delivery_of(job, attempts=5), CODEC, APP.tasks, None)
    assert isinstance(verdict, DeadLetterJob)
    assert "crash loop: delivered 5 times" in verdict.reason
    assert CODEC.decode_result(verdict.result.body, "j1").type == "CrashLoop"


def test_success_is_acked_with_its_result() -> None:
    job = Job("j1", "t.add", queue="q")
    d = delivery_of(job)
    verdict = settle(d, job, TaskOptions(), CODEC, {"a": (1, 2)}, None)
    assert isinstance(verdict, AckJob) and verdict.delivery is d
    assert verdict.result is not None and (verdict.result.job_id, verdict.result.queue) == (
        "j1", "q")
    assert CODEC.decode_result(verdict.result.body, "j1") == Outcome.success({"a": (1, 2)})
    assert settle(d, job, TaskOptions(store_result=False), CODEC, 3, None) == AckJob(d)


def test_a_return_value_that_cannot_be_encoded_is_a_failure_result() -> None:
    job = Job("j1", "t.add")
    verdict = settle(delivery_of(job), job, TaskOptions(), CODEC, object(), None)
    assert isinstance(verdict, AckJob) and verdict.result is not None
    outcome = CODEC.decode_result(verdict.result.body, "j1")
    assert not outcome.ok and outcome.error.startswith("SerializationError: the return value")


def test_a_retryable_error_with_retries_left_is_retried_with_backoff() -> None:
    job = Job("j1", "t.add", (1,), retries=1)
    options = TaskOptions(max_retries=3, retry_backoff=10, retry_backoff_max=600)
    verdict = settle(delivery_of(job), job, options, CODEC, None, ValueError("x"))
    assert isinstance(verdict, RetryJob)
    assert 16 <= verdict.delay <= 24  # base * 2 ** 1, +-20 %
    assert CODEC.decode_job(verdict.body, "default", "j1").retries == 2


def test_retry_delay_rules() -> None:
    options = TaskOptions(retry_backoff=10, retry_backoff_max=25)
    assert retry_delay(Retry(delay=3), options, 5) == 3
    assert retry_delay(Retry(), options, 5) == 25  # capped
    assert 8 <= retry_delay(KeyError(), options, 0) <= 12


@pytest.mark.parametrize(
    ("error", "options", "retries", "reason"),
    [
        (KeyError("k"), TaskOptions(max_retries=5, retry_on=(ValueError,)), 0,
         "failed after 1 attempt(s)"),
        (ValueError("v"), TaskOptions(max_retries=3), 3, "failed after 4 attempt(s)"),
    ],
)
def test_failures_without_retries_left_are_dead_lettered(
    error: BaseException, options: TaskOptions, retries: int, reason: str
) -> None:
    job = Job("j1", "t.add", retries=retries)
    try:
        raise error
    except BaseException as exc:
        verdict = settle(delivery_of(job), job, options, CODEC, None, exc)
    assert isinstance(verdict, DeadLetterJob)
    assert verdict.reason == reason
    outcome = CODEC.decode_result(verdict.result.body, "j1")
    assert outcome.type == type(error).__name__
    assert outcome.error == verdict.error == f"{type(error).__name__}: {error}"
    assert "Traceback" in outcome.traceback


def test_reject_and_unreportable_carry_their_reason() -> None:
    job = Job("j1", "t.add")
    d = delivery_of(job)
    rejected = reject(d, CODEC, "bad thing", kind="Odd")
    assert (rejected.reason, rejected.error) == ("bad thing", "")
    assert CODEC.decode_result(rejected.result.body, "j1").type == "Odd"
    dead = unreportable(d, job, CODEC, RuntimeError())
    assert dead.reason == "failed" and "could not be reported (RuntimeError)" in dead.error


def test_outcome_round_trip_and_unwrap() -> None:
    ok = CODEC.decode_result(CODEC.encode_result("j", "q", Outcome.success([1, 2])).body, "j")
    assert ok.unwrap() == [1, 2]
    failed = Outcome.failure("KeyError", "KeyError: 'x'", "Traceback ...")
    back = CODEC.decode_result(CODEC.encode_result("j", "q", failed).body, "j")
    assert back == failed
    with pytest.raises(JobFailed, match="KeyError: 'x'") as info:
        back.unwrap()
    assert (info.value.exc_type, info.value.traceback) == ("KeyError", "Traceback ...")


def test_an_unreadable_result_is_a_failure_that_says_why() -> None:
    other = Codec(JSONSerializer(), secret_key="another")
    body = other.encode_result("j", "q", Outcome.success(1)).body
    outcome = CODEC.decode_result(body, "j")
    assert (outcome.ok, outcome.type) == (False, "BadMessage")
    assert outcome.error.startswith("unreadable result: bad signature")


def test_backoff() -> None:
    assert [Backoff(0.1, 5).delay(n) for n in range(8)] == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert Backoff(1, 100).delay(10_000) == 100  # no overflow
    jittered = [Backoff(10, 1000, jitter=0.2).delay(1) for _ in range(200)]
    assert all(16 <= d <= 24 for d in jittered) and len(set(jittered)) > 100
