"""Workflows on the worker side. A job of a workflow (``job.workflow`` set) that finished
carries, in its settlement, what follows it (_workflow_plan.py decides what): the next step of
a chain, a chord member's report, or the workflow's failure. The sender does that work just
before the job's ack, after its result is stored: a crash in between redelivers the job,
which does it again, and every step is idempotent (fixed job ids, which the broker adds once;
chord records that are sets). Jobs outside a workflow pay one ``is None`` test."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._codec import Codec, Outcome
from .._errors import JobFailed
from .._interfaces import Broker, ResultBackend
from .._types import Job, Message, Result
from .._workflow_interfaces import ChordRecords
from .._workflow_plan import error_record, failure, followups, member_id, queue_of

if TYPE_CHECKING:
    from .policy import Settlement

logger = logging.getLogger("tinyq.worker")

S = TypeVar("S")


@attrs.frozen
class Fire:
    """A chord record to report to: ``member`` of ``total`` done; the one report that
    completes it enqueues ``messages``."""

    queue: str
    record: str
    member: int
    total: int
    messages: tuple[Message, ...]


@attrs.frozen
class NextSteps:
    """What follows a finished job of a workflow, done before its ack."""

    result: Result | None = None  # stored first: a callback reads it, a handle waits on it
    enqueue: tuple[Message, ...] = ()
    fire: Fire | None = None
    failures: tuple[Result, ...] = ()  # the workflow's failure, under its final results


def _messages(jobs: Sequence[Job], codec: Codec) -> tuple[Message, ...]:
    now = time.time()
    return tuple(Message(j.id, j.queue, codec.encode_job(attrs.evolve(j, enqueued_at=now)))
                 for j in jobs)


def carrying_next_steps(settlement: S, job: Job, value: Any, error: BaseException | None,
                        codec: Codec) -> S:
    """``settlement`` carrying what follows ``job`` in its workflow, when it finished it
    (a retry carries nothing: the job is not finished)."""
    if job.workflow is None or not hasattr(settlement, "workflow"):
        return settlement
    result = getattr(settlement, "result", None)
    if not hasattr(settlement, "reason"):  # acknowledged: it succeeded
        jobs, join = followups(job, value)
        fire = None if join is None else Fire(
            join.queue, join.chord_id, join.member, join.total,
            _messages(join.callback, codec))
        steps = NextSteps(result, _messages(jobs, codec), fire)
    else:
        why = getattr(settlement, "error", "") or getattr(settlement, "reason", "failed")
        kind = "JobFailed" if error is None else type(error).__name__
        targets, handler = failure(job, why, kind)
        text = (f"workflow {job.workflow.get('w', '')} failed: {job.task_name} (job {job.id}) "
                f"failed: {why}")
        failures = tuple(codec.encode_result(i, q, Outcome.failure(kind, text))
                         for i, q in targets if i != job.id)
        fire = None if handler is None else Fire(
            handler.queue, error_record(job), 0, 1, _messages([handler], codec))
        steps = NextSteps(result, (), fire, failures)
    return attrs.evolve(settlement, workflow=steps)  # type: ignore[misc]


def take_next_steps(broker: Broker, results: ResultBackend, batch: Sequence[Settlement],
                    ttl: float) -> None:
    """Before ``batch`` is sent (its acks): store the results the next steps read, then
    enqueue those steps and report chord members. An error raises: the batch is sent again
    later, and each step taken again adds nothing twice."""
    taken: list[NextSteps] = [steps for s in batch
                              if (steps := getattr(s, "workflow", None)) is not None]
    if not taken:
        return
    # One round trip for the batch's results and one for its next steps' jobs, then one
    # report per chord member.
    stored = [r for steps in taken for r in (steps.result, *steps.failures) if r is not None]
    if stored:
        results.store(stored, ttl)
    following = [m for steps in taken for m in steps.enqueue]
    if following:
        broker.enqueue(following)
    for steps in taken:
        fire = steps.fire
        if fire is None:
            continue
        if not isinstance(broker, ChordRecords):
            logger.error("Workflow step lost: %s keeps no chord records (the ChordRecords "
                         "tier)", type(broker).__name__)
            continue
        broker.chord_member_done(fire.queue, fire.record, fire.member, fire.total, ttl,
                                 fire.messages)


def workflow_args(job: Job, codec: Codec, results: ResultBackend | None) -> tuple[Any, ...]:
    """The arguments of ``job``: with a chord callback's, the members' values first, in
    order, read from their results (stored before the callback was enqueued)."""
    collect = (job.workflow or {}).get("in")
    if collect is None or results is None:
        return job.args
    values = []
    for index in range(collect["n"]):
        job_id, queue = member_id(collect["g"], index), queue_of(collect["q"], index)
        stored = results.get(job_id, 0, queue)
        if stored is None:
            raise JobFailed(f"the result of member {index} (job {job_id}) is gone: expired, "
                            "or its result backend lost it")
        values.append(codec.decode_result(stored.body, job_id).unwrap())
    return (values, *job.args)
