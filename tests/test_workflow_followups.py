"""Issue 16's workflow leftovers: a workflow's follow-up jobs (a chain's next step, a chord's
callback, on_error) go through the producer's path (enqueue hooks, durable enqueue), a
redelivered step does not run its next step twice with a result backend of its own, and a
chord member stores its result once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from tinyq_core import Application, chain, chord
from tinyq_core._worker.followups import FollowUps
from tinyq_core._worker.policy import settle
from tinyq_core.plugin import Job, Message, Result, hookimpl
from tinyq_memory import FakeClock, MemoryBroker, MemoryResultBackend, drain

runs: Counter[str] = Counter()


class Recorder:
    """The enqueue hooks, per job id; before_enqueue adds a header the worker must see."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.headers: dict[str, dict[str, str]] = {}

    @hookimpl
    def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
        self.calls.append(("before", job.id))
        headers["trace"] = f"t-{job.id}"

    @hookimpl
    def tinyq_after_enqueue(self, job: Job) -> None:
        self.calls.append(("after", job.id))

    @hookimpl
    def tinyq_enqueue_failed(self, job: Job, error: BaseException) -> None:
        self.calls.append(("failed", job.id))

    @hookimpl
    def tinyq_job_received(self, job: Job, attempt: int) -> None:
        self.headers[job.id] = dict(job.headers)


class DurableSpy(MemoryBroker):
    """A memory broker that notes the ids of every durable enqueue and of stored results."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.durable: list[str] = []

    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        if durable:
            self.durable += [m.id for m in messages]
        super().enqueue(messages, durable=durable)


def make_app(broker: MemoryBroker, **options: Any) -> Application:
    runs.clear()
    app = Application(broker, **options)

    @app.task(name="add")
    def add(x: int, y: int = 0) -> int:
        runs[f"add({x},{y})"] += 1
        return x + y

    @app.task(name="total")
    def total(values: list[int]) -> int:
        runs["total"] += 1
        return sum(values)

    @app.task(name="boom")
    def boom(x: int) -> int:
        raise ValueError("boom")

    @app.task(name="on_error")
    def on_error(failure: dict[str, Any]) -> None:
        runs["on_error"] += 1

    return app


def test_follow_up_jobs_pass_through_the_enqueue_hooks() -> None:
    recorder = Recorder()
    app = make_app(MemoryBroker(clock=FakeClock()), plugins=[recorder])
    add, total = app.tasks["add"], app.tasks["total"]
    steps = chain(add.s(1, 2), add.s(3)).delay()
    fan_in = chord([add.s(i) for i in range(4)], total.s()).delay()
    drain(app)
    assert (steps.result(0), fan_in.result(0)) == (6, 6)
    next_step, callback = f"{steps.id}.1", f"{fan_in.id}.cb"
    for job_id in (next_step, callback):
        # Once each: the callback's hooks run for the member whose report enqueued it only.
        assert recorder.calls.count(("before", job_id)) == 1, (job_id, recorder.calls)
        assert recorder.calls.count(("after", job_id)) == 1, (job_id, recorder.calls)
        assert recorder.headers[job_id]["trace"] == f"t-{job_id}"  # the hook's header ran
    assert not [c for c in recorder.calls if c[0] == "failed"]


def test_on_error_passes_through_the_enqueue_hooks() -> None:
    recorder = Recorder()
    app = make_app(MemoryBroker(clock=FakeClock()), plugins=[recorder])
    flow = chain(app.tasks["boom"].s(1), app.tasks["add"].s(),
                 on_error=app.tasks["on_error"].s()).delay()
    drain(app)
    assert runs["on_error"] == 1
    handler = f"{flow.id}.err"
    assert recorder.calls.count(("after", handler)) == 1
    assert recorder.headers[handler]["trace"] == f"t-{handler}"


def test_follow_up_jobs_are_enqueued_durably_when_the_app_says_so() -> None:
    broker = DurableSpy(clock=FakeClock())
    app = make_app(broker, durable_enqueue=True)
    add, total = app.tasks["add"], app.tasks["total"]
    steps = chain(add.s(1, 2), add.s(3)).delay()
    fan_in = chord([add.s(i) for i in range(3)], total.s()).delay()
    drain(app)
    assert (steps.result(0), fan_in.result(0)) == (6, 3)
    assert {f"{steps.id}.1", f"{fan_in.id}.cb"} <= set(broker.durable)


def test_a_strict_worker_enqueues_a_next_step_on_a_queue_it_does_not_know() -> None:
    """The producer checked the plan's queues (its tasks'); a worker that serves one step
    only, with strict_queues, must not refuse the next step's queue."""
    broker = MemoryBroker(clock=FakeClock())
    producer = make_app(broker)
    later = producer.task(name="later", queue="elsewhere")(lambda x: x + 1)
    handle = chain(producer.tasks["add"].s(1, 2), later.s()).delay()
    worker_app = Application(broker, strict_queues=True)
    worker_app.task(name="add")(lambda x, y=0: x + y)
    drain(worker_app, queues=["default"])
    drain(producer, queues=["elsewhere"])
    assert handle.result(0) == 4


@pytest.mark.parametrize("own_results", [True, False])
def test_a_redelivered_step_does_not_run_its_finished_next_step_again(
    own_results: bool,
) -> None:
    """The worker died after the chain's next step was enqueued, before its ack; the next
    step ran and finished; then the step is redelivered and taken again: the next step
    must not run a second time, with the broker's own results or a backend of its own."""
    clock = FakeClock()
    broker = MemoryBroker(clock=clock, visibility_timeout=5)
    options: dict[str, Any] = {} if own_results else {"result_backend": MemoryResultBackend()}
    app = make_app(broker, **options)
    add = app.tasks["add"]
    handle = chain(add.s(1, 1), add.s(5)).delay()
    [delivery] = broker.reserve(["default"], 1, 0)
    job = app.codec.decode_job(delivery.message.body, "default", delivery.id)
    FollowUps(app._producer, 60).take([settle(delivery, job, add.options, app.codec, 2,
                                                 None)])
    # (the worker died here.) The next step runs to its end on another worker:
    drain(app)
    assert handle.result(0) == 7 and runs["add(2,5)"] == 1
    clock.advance(6)
    broker.recover(["default"])
    drain(app)  # the first step again, and what it enqueues
    assert runs["add(2,5)"] == 1, runs


def test_a_chord_member_stores_its_result_once() -> None:
    stored: list[str] = []

    class Counting(MemoryResultBackend):
        def store(self, results: Sequence[Result], ttl: float) -> None:
            stored.extend(r.job_id for r in results)
            super().store(results, ttl)

    app = make_app(MemoryBroker(clock=FakeClock()), result_backend=Counting())
    handle = chord([app.tasks["add"].s(i) for i in range(3)], app.tasks["total"].s()).delay()
    drain(app)
    assert handle.result(0) == 3
    assert Counter(stored) == Counter({f"{handle.id}.{i}": 1 for i in range(3)}
                                      | {f"{handle.id}.cb": 1})


def test_a_chords_callback_reads_its_members_results_in_one_call() -> None:
    reads: list[int] = []

    class Counting(MemoryResultBackend):
        def get(self, job_id: str, timeout: float | None = 0,
                queue: str = "default") -> Result | None:
            reads.append(1)
            return super().get(job_id, timeout, queue)

        def get_many(self, jobs: Sequence[tuple[str, str]]) -> list[Result | None]:
            reads.append(len(jobs))
            return [MemoryResultBackend.get(self, j, 0, q) for q, j in jobs]

    app = make_app(MemoryBroker(clock=FakeClock()), result_backend=Counting())
    handle = chord([app.tasks["add"].s(i) for i in range(5)], app.tasks["total"].s()).delay()
    drain(app)
    assert reads == [5]  # one call for the five members' results, not five
    assert handle.result(0) == 10


@pytest.mark.parametrize("own_results", [True, False])
def test_on_redis_a_step_taken_again_after_its_next_step_finished_adds_nothing(
    redis_server: Any, own_results: bool,
) -> None:
    """Redis skips a job id whose result it stores; with a result backend of its own (here
    another prefix, which the broker cannot see) the worker asks that backend first."""
    from tinyq_redis import RedisBroker

    prefix = f"t{uuid.uuid4().hex[:8]}"
    options: dict[str, Any] = {} if own_results else {
        "result_backend": RedisBroker(redis_server.url, prefix=f"{prefix}r").result_backend()}
    app = make_app(RedisBroker(redis_server.url, prefix=prefix), **options)
    add = app.tasks["add"]
    handle = chain(add.s(1, 1), add.s(5)).delay()
    [delivery] = app.broker.reserve(["default"], 1, 1)
    job = app.codec.decode_job(delivery.message.body, "default", delivery.id)
    settlement = settle(delivery, job, add.options, app.codec, 2, None)
    FollowUps(app._producer, 60).take([settlement])
    app.worker(concurrency=1, scheduler=False).run(burst=True)  # the next step, to its end
    assert handle.result(5) == 7
    FollowUps(app._producer, 60).take([settlement])  # the step, redelivered, taken again
    app.broker.ack([delivery])
    app.worker(concurrency=1, scheduler=False).run(burst=True)
    assert runs["add(2,5)"] == 1, runs
    app.close()
