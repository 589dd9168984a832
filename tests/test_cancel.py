"""Cancelling jobs (issue 15 item 2), the producer's side: a waiting job is removed and never
runs, a finished one keeps its outcome, and the outcome's envelope. Running jobs:
test_cancel_running.py; across processes: test_cancel_processes.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_contract_tiers import RequiredOnlyBroker

from tinyq_core import (
    Application,
    ConfigurationError,
    JobCancelled,
    JobExpired,
    JobFailed,
)
from tinyq_core._codec import Codec, Outcome
from tinyq_core._serializers import JSONSerializer
from tinyq_core.plugin import hookimpl
from tinyq_memory import FakeClock, MemoryBroker


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    @hookimpl
    def tinyq_job_cancelled(self, job: Any, started: bool) -> None:
        self.calls.append(("cancelled", job.id, started))

    @hookimpl
    def tinyq_job_succeeded(self, job: Any) -> None:
        self.calls.append(("succeeded", job.id, None))

    @hookimpl
    def tinyq_job_retried(self, job: Any) -> None:
        self.calls.append(("retried", job.id, None))


def test_a_waiting_job_is_removed_and_never_runs() -> None:
    recorder = Recorder()
    app = Application(MemoryBroker(), plugins=[recorder])
    ran: list[int] = []

    @app.task(name="t.work")
    def work(n: int) -> int:
        ran.append(n)
        return n

    h, other = work.delay(1), work.delay(2)
    later = work.apply_async((3,), countdown=3600)
    assert h.status() == "queued"
    assert h.cancel() == "cancelled"
    assert later.cancel() == "cancelled"  # a delayed job too
    assert (h.status(), later.status()) == ("cancelled", "cancelled")
    with pytest.raises(JobCancelled, match="Cancelled: cancelled before it started"):
        h.result(0)
    with pytest.raises(JobFailed):  # except JobFailed catches it too
        later.result(0)
    assert app.worker().run(burst=True) == 0
    assert ran == [2]
    assert other.result(0) == 2
    assert h.cancel() == "finished"  # its outcome stands: cancelling again changes nothing
    assert ("cancelled", h.id, False) not in recorder.calls  # no worker saw it


def test_app_cancel_by_id_finds_the_queue() -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.other", queue="other")
    def other() -> None: ...

    h = other.delay()
    assert app.cancel(h.id) == "cancelled"
    assert app.job(h.id).status() == "cancelled"
    assert app.cancel("no-such-job") == "unknown"
    assert app.cancel(h.id, "other") == "finished"


def test_cancelling_a_finished_job_is_a_no_op_that_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(MemoryBroker())

    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    h = add.delay(1, 2)
    app.worker().run(burst=True)
    with caplog.at_level("INFO", logger="tinyq"):
        assert h.cancel() == "finished"
    assert "has finished already" in caplog.text
    assert h.status() == "succeeded"
    assert h.result(0) == 3


def test_a_broker_without_the_tier_cannot_cancel() -> None:
    app = Application(RequiredOnlyBroker(FakeClock()))
    with pytest.raises(ConfigurationError, match="cannot cancel jobs"):
        app.cancel("x", "default")


def test_with_another_result_backend_the_cancelled_outcome_is_stored_there() -> None:
    results = MemoryBroker().result_backend()
    app = Application(MemoryBroker(), result_backend=results)

    @app.task(name="t.noop")
    def noop() -> None: ...

    h = noop.delay()
    assert h.cancel() == "cancelled"
    assert results.get(h.id, 0, "default") is not None
    assert h.status() == "cancelled"


def test_the_outcome_envelope_reads_as_a_failure_to_an_older_reader() -> None:
    codec = Codec(JSONSerializer())
    for outcome, kind, error in ((Outcome.cancelled("why"), "cancelled", JobCancelled),
                                 (Outcome.expired("late"), "expired", JobExpired)):
        result = codec.encode_result("j", "q", outcome)
        assert not result.ok
        envelope = json.loads(result.body)
        # What a reader without the "kind" field sees: a failure of type Cancelled/Expired.
        assert envelope["ok"] is False and envelope["type"] == kind.capitalize()
        assert envelope["kind"] == kind
        decoded = codec.decode_result(result.body, "j")
        assert decoded.kind == kind
        with pytest.raises(error):
            decoded.unwrap()
    plain = codec.decode_result(codec.encode_result(
        "j", "q", Outcome.failure("Cancelled", "Cancelled: a user's own exception")).body, "j")
    assert plain.kind == ""  # a task's own exception named Cancelled is a plain failure
    with pytest.raises(JobFailed) as info:
        plain.unwrap()
    assert type(info.value) is JobFailed
