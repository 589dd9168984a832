"""Workflows (issue 16, item 3) on the memory broker with a fake clock, run by ``drain``:
chains pass values on, groups keep order, a chord's callback gets every member's value once,
a failure fails the workflow once and calls on_error once, a member's retries come first."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tinyq_core import Application, ConfigurationError, JobFailed, Retry, chain, chord, group
from tinyq_core._codec import Codec
from tinyq_core._serializers import JSONSerializer
from tinyq_core._types import Job
from tinyq_core._worker.followups import FollowUps
from tinyq_core._worker.policy import settle
from tinyq_memory import FakeClock, MemoryBroker, drain

from support.worker_thread import running_worker

calls: Counter[str] = Counter()
errors: list[dict[str, Any]] = []


@pytest.fixture
def app() -> Application:
    calls.clear()
    errors.clear()
    app = Application(MemoryBroker(clock=FakeClock()))

    @app.task(name="add")
    def add(x: int, y: int = 0) -> int:
        calls[f"add({x},{y})"] += 1
        return x + y

    @app.task(name="total")
    def total(values: list[int], plus: int = 0) -> int:
        calls["total"] += 1
        return sum(values) + plus

    @app.task(name="boom")
    def boom(x: int) -> int:
        calls["boom"] += 1
        raise ValueError(f"boom at {x}")

    @app.task(name="flaky", max_retries=2, retry_backoff=1)
    def flaky(x: int) -> int:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise Retry(delay=1)
        return x * 10

    @app.task(name="on_error")
    def on_error(failure: dict[str, Any], tag: str) -> None:
        errors.append({**failure, "tag": tag})

    @app.task(name="quiet", store_result=False)
    def quiet(x: int) -> int:
        return x

    return app


def task(app: Application, name: str) -> Any:
    return app.tasks[name]


def test_a_chain_passes_each_value_to_the_next_step(app: Application) -> None:
    add = task(app, "add")
    handle = chain(add.s(1, 2), add.s(10), add.s(100)).delay()
    drain(app)
    assert handle.result(0) == 113
    assert calls == Counter({"add(1,2)": 1, "add(3,10)": 1, "add(13,100)": 1})


def test_an_immutable_signature_ignores_the_previous_value(app: Application) -> None:
    add = task(app, "add")
    handle = chain(add.s(1, 2), add.si(5, 5)).delay()
    drain(app)
    assert handle.result(0) == 10


def test_a_signature_delays_alone(app: Application) -> None:
    handle = task(app, "add").s(2, 3).delay()
    drain(app)
    assert handle.result(0) == 5


def test_a_groups_value_is_its_members_values_in_order(app: Application) -> None:
    add = task(app, "add")
    handle = group([add.s(i, i) for i in range(20)]).delay()
    drain(app)
    assert handle.result(0) == [2 * i for i in range(20)]


def test_a_chord_calls_back_once_with_every_members_value(app: Application) -> None:
    add = task(app, "add")
    handle = chord([add.s(i) for i in range(10)], task(app, "total").s(plus=1000)).delay()
    drain(app)
    assert handle.result(0) == sum(range(10)) + 1000
    assert calls["total"] == 1


def test_nesting_group_in_chain_chain_in_group_and_a_chain_as_callback(
    app: Application,
) -> None:
    add, total = task(app, "add"), task(app, "total")
    # a -> (b, c) -> total: the group in the middle of the chain becomes a chord.
    middle = chain(add.s(1, 1), group([add.s(10), add.s(20)]), total.s()).delay()
    # A group of chains, whose callback is a chain.
    nested = chord([chain(add.s(i), add.s(1)) for i in range(3)],
                   chain(total.s(), add.s(100))).delay()
    # A chord as a chain's first step, then more steps.
    after = chain(chord([add.s(1), add.s(2)], total.s()), add.s(1000)).delay()
    # A group at a chain's end: the handle's value is the list.
    ends = chain(add.s(1, 1), group([add.s(1), add.s(2)])).delay()
    drain(app)
    assert middle.result(0) == 12 + 22
    assert nested.result(0) == (1 + 2 + 3) + 100
    assert after.result(0) == 1003
    assert ends.result(0) == [3, 4]


def test_a_chain_through_a_retry_completes_and_runs_the_next_step_once(
    app: Application,
) -> None:
    add = task(app, "add")
    handle = chain(add.s(1, 1), task(app, "flaky").s(), add.s(5)).delay()
    drain(app)
    assert handle.result(0) == 25
    assert calls["flaky"] == 2  # failed once, then succeeded
    assert calls["add(20,5)"] == 1


def test_a_failure_fails_the_workflow_once_naming_the_member(app: Application) -> None:
    add, boom = task(app, "add"), task(app, "boom")
    on_error = task(app, "on_error").s("mine")
    handle = chain(add.s(1, 1), boom.s(), add.s(100), on_error=on_error).delay()
    drain(app)
    with pytest.raises(JobFailed) as failed:
        handle.result(0)
    assert "boom" in str(failed.value) and "boom at 2" in str(failed.value)
    assert f"{handle.id}.1" in str(failed.value)  # the member's job id
    assert calls["add(2,100)"] == 0  # later members never ran
    assert [(e["task"], e["job_id"], e["tag"]) for e in errors] == [
        ("boom", f"{handle.id}.1", "mine")]
    assert "ValueError: boom at 2" in errors[0]["error"]


def test_two_failing_members_call_on_error_once_and_the_callback_never(
    app: Application,
) -> None:
    add, boom = task(app, "add"), task(app, "boom")
    handle = chord([boom.s(1), add.s(1), boom.s(2)], task(app, "total").s(),
                   on_error=task(app, "on_error").s("c")).delay()
    drain(app)
    with pytest.raises(JobFailed, match="boom"):
        handle.result(0)
    assert calls["boom"] == 2 and calls["total"] == 0
    assert len(errors) == 1


def test_a_failed_group_member_fails_the_groups_handle(app: Application) -> None:
    add, boom = task(app, "add"), task(app, "boom")
    handle = group([chain(add.s(1), boom.s(), add.s(1)), add.s(2)]).delay()
    drain(app)
    with pytest.raises(JobFailed, match=r"boom \(job"):
        handle.result(0)


def test_refused_shapes_say_why(app: Application) -> None:
    add, quiet = task(app, "add"), task(app, "quiet")
    with pytest.raises(ValueError, match="store_result=False"):
        chord([quiet.s(1)], add.s()).delay()
    with pytest.raises(ValueError, match="cannot end a member"):
        chord([group([add.s(1)])], add.s()).delay()
    with pytest.raises(TypeError, match="signature"):
        chain(add.s(1), add)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        group([])


def test_a_chord_needs_the_tier() -> None:
    from test_contract_tiers import RequiredOnlyBroker

    app = Application(RequiredOnlyBroker(FakeClock()))
    add = app.task(name="add")(lambda x: x)
    with pytest.raises(ConfigurationError, match="ChordRecords"):
        chord([add.s(1)], add.s()).delay()
    chain(add.s(1), add.s()).delay()  # a chain needs no record


def test_a_step_taken_twice_adds_its_jobs_once(app: Application) -> None:
    """A worker that died after the chain's next step was enqueued, before its ack: the
    redelivered job enqueues it again, under the same id, and it runs once."""
    add = task(app, "add")
    chain(add.s(1, 1), add.s(5)).delay()
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    [delivery] = broker.reserve(["default"], 1, 0)
    # What a worker does with the finished job, twice: the second time is the redelivery's.
    job = app.codec.decode_job(delivery.message.body, "default", delivery.id)
    settlement = settle(delivery, job, add.options, app.codec, 2, None)
    FollowUps(app._producer, 60).take([settlement])
    FollowUps(app._producer, 60).take([settlement])
    broker.ack([delivery])
    drain(app)
    assert calls == Counter({"add(2,5)": 1})


def test_old_messages_decode_and_the_plan_round_trips() -> None:
    codec = Codec(JSONSerializer())
    old = codec.encode_job(Job("j1", "t", (1,)))
    assert codec.decode_job(old, "default", "j1").workflow is None
    plan = {"w": "w1", "then": [{"next": {"t": "t", "id": "w1.1", "q": "default"}}]}
    body = codec.encode_job(Job("j1", "t", (1,), workflow=plan))
    assert codec.decode_job(body, "default", "j1").workflow == plan


def test_a_chords_callback_may_be_a_group(app: Application) -> None:
    add, total = task(app, "add"), task(app, "total")
    handle = chord([add.s(1), add.s(2)], group([total.s(), total.s(plus=10)])).delay()
    drain(app)
    assert handle.result(0) == [3, 13]


def test_a_chord_on_sqlite_with_a_worker_thread(tmp_path: Path) -> None:
    app = Application(f"sqlite:///{tmp_path / 'q.db'}")
    square = app.task(name="square")(lambda x: x * x)
    total = app.task(name="total")(lambda values, plus=0: sum(values) + plus)
    handle = chain(chord([square.s(i) for i in range(30)], total.s()), square.s()).delay()
    with running_worker(app, concurrency=4):
        assert handle.result(30) == sum(i * i for i in range(30)) ** 2
    app.close()


def test_a_member_in_a_crash_loop_fails_the_workflow(app: Application) -> None:
    """A member dead-lettered before it ran (its worker died every time) fails the workflow
    too, instead of leaving the handle waiting."""
    add = task(app, "add")
    handle = chain(add.s(1, 1), add.s(5), on_error=task(app, "on_error").s("loop")).delay()
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    for _ in range(3):  # three deliveries that never reported: the lease ran out each time
        broker.reserve(["default"], 1, 0)
        broker.clock.advance(broker.visibility_timeout + 1)  # type: ignore[attr-defined]
        broker.recover(["default"])
    drain(app)
    with pytest.raises(JobFailed, match="crash loop"):
        handle.result(0)
    assert calls["add(2,5)"] == 0 and calls["add(1,1)"] == 0
    assert [e["tag"] for e in errors] == ["loop"]


def test_workflows_run_with_signed_messages() -> None:
    app = Application(MemoryBroker(clock=FakeClock()), secret_key="key")
    add = app.task(name="add")(lambda x, y=0: x + y)
    total = app.task(name="total")(lambda values: sum(values))
    steps = chain(add.s(1, 2), add.s(3)).delay()
    fan_in = chord([add.s(i) for i in range(5)], total.s()).delay()
    drain(app)
    assert (steps.result(0), fan_in.result(0)) == (6, 10)


def test_a_signed_step_whose_result_was_stored_before_a_crash_still_goes_on() -> None:
    """The worker died after storing the step's result, before enqueueing the next step: the
    redelivered message is not dropped as a replay (its result is stored), it runs again."""
    clock = FakeClock()
    app = Application(MemoryBroker(clock=clock, visibility_timeout=5), secret_key="key")
    add = app.task(name="add")(lambda x, y=0: x + y)
    handle = chain(add.s(1, 2), add.s(3)).delay()
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    [delivery] = broker.reserve(["default"], 1, 0)
    job = app.codec.decode_job(delivery.message.body, "default", delivery.id)
    settlement = settle(delivery, job, add.options, app.codec, 3, None)
    assert settlement.result is not None
    app.results.store([settlement.result], 60)  # then the worker died
    clock.advance(6)
    broker.recover(["default"])
    drain(app)
    assert handle.result(0) == 6
