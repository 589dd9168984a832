"""Workflows on the worker side. A job of a workflow (``job.workflow`` set) that finished
carries, in its settlement, what follows it (_workflow_plan.py decides what): the next step of
a chain, a chord member's report, or the workflow's failure. The sender takes those steps
(followups.py) just before the job's ack: a crash in between redelivers the job, which takes
them again, and every step is idempotent (fixed job ids, which the broker adds once; chord
records that are sets). Jobs outside a workflow pay one ``is None`` test."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from .._codec import Codec, Outcome
from .._errors import JobFailed
from .._interfaces import ResultBackend
from .._types import Job, Result
from .._workflow_plan import error_record, failure, followups, member_id, queue_of

S = TypeVar("S")


@attrs.frozen
class Fire:
    """A chord record to report to: ``member`` of ``total`` done; the one report that
    completes it enqueues ``callback`` (through the producer's path, see followups.py)."""

    queue: str
    record: str
    member: int
    total: int
    callback: tuple[Job, ...]


@attrs.frozen
class NextSteps:
    """What follows a finished job of a workflow, done before its ack."""

    result: Result | None = None  # a chord member's: stored with its report, not its ack
    enqueue: tuple[Job, ...] = ()
    fire: Fire | None = None
    failures: tuple[Result, ...] = ()  # the workflow's failure, under its final results


def carrying_next_steps(settlement: S, job: Job, value: Any, error: BaseException | None,
                        codec: Codec) -> S:
    """``settlement`` carrying what follows ``job`` in its workflow, when it finished it
    (a retry carries nothing: the job is not finished)."""
    if job.workflow is None or not hasattr(settlement, "workflow"):
        return settlement
    if not hasattr(settlement, "reason"):  # acknowledged: it succeeded
        jobs, join = followups(job, value)
        if join is None:  # a chain's next step: the job's result goes with its ack
            steps = NextSteps(None, tuple(jobs))
        else:  # a chord member: its result goes with its report (the callback reads it)
            report = Fire(join.queue, join.chord_id, join.member, join.total, join.callback)
            steps = NextSteps(getattr(settlement, "result", None), (), report)
    else:
        why = getattr(settlement, "error", "") or getattr(settlement, "reason", "failed")
        kind = "JobFailed" if error is None else type(error).__name__
        targets, handler = failure(job, why, kind)
        text = (f"workflow {job.workflow.get('w', '')} failed: {job.task_name} (job {job.id}) "
                f"failed: {why}")
        failures = tuple(codec.encode_result(i, q, Outcome.failure(kind, text))
                         for i, q in targets if i != job.id)
        fire = None if handler is None else Fire(
            handler.queue, error_record(job), 0, 1, (handler,))
        steps = NextSteps(None, (), fire, failures)
    return attrs.evolve(settlement, workflow=steps)  # type: ignore[misc]


def workflow_args(job: Job, codec: Codec, results: ResultBackend | None) -> tuple[Any, ...]:
    """The arguments of ``job``: with a chord callback's, the members' values first, in
    order, read from their results (stored before the callback was enqueued)."""
    collect = (job.workflow or {}).get("in")
    if collect is None or results is None:
        return job.args
    members = [(queue_of(collect["q"], i), member_id(collect["g"], i))
               for i in range(collect["n"])]
    values = []
    # One read for them all (one round trip on Redis), not one per member.
    for index, ((_, job_id), stored) in enumerate(zip(members, results.get_many(members),
                                                      strict=True)):
        if stored is None:
            raise JobFailed(f"the result of member {index} (job {job_id}) is gone: expired, "
                            "or its result backend lost it")
        values.append(codec.decode_result(stored.body, job_id).unwrap())
    return (values, *job.args)
