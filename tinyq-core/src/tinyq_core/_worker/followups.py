"""A workflow's follow-up jobs (a chain's next step, a chord's callback, on_error), sent by
the worker through the producer's path: ``tinyq_before_enqueue`` (its headers ride in the
signed message), ``tinyq_after_enqueue`` / ``tinyq_enqueue_failed``, and the application's
``durable_enqueue``. The producer checked the plan's queues at ``.delay()``: a worker with
``strict_queues`` that does not serve the next step's queue must still enqueue it.

A chord's callback goes in inside the record's atomic step (ChordRecords): the broker calls
back for its messages only on the report that completes the record, so the hooks run once
per callback enqueued, not once per member. A chord member's result goes in with its report
(one step on Redis), not again with its ack.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._types import Job, Message, Result
from .._workflow_interfaces import ChordRecords
from .workflows import Fire, NextSteps

if TYPE_CHECKING:
    from .._producer import Producer
    from .policy import Settlement

logger = logging.getLogger("tinyq.worker")


class FollowUps:
    """Takes the next steps a batch of settlements carries, before the batch is sent."""

    def __init__(self, producer: Producer, ttl: float) -> None:
        self.producer = producer
        self.ttl = ttl
        backends = producer.backends
        self.own_results = backends.explicit_results is None

    def take(self, batch: Sequence[Settlement]) -> set[str]:
        """Enqueue the batch's next steps and report its chord members. Returns the
        receipts of the settlements whose result went in with a report: their ack need not
        store it again. An error raises: the batch is sent again later, and each step taken
        again adds nothing twice."""
        taken = [(s, steps) for s in batch if (steps := getattr(s, "workflow", None))]
        if not taken:
            return set()
        results = self.producer.backends.results
        failures = [r for _, steps in taken for r in steps.failures]
        if failures:  # under the results the workflow's handle waits on
            results.store(failures, self.ttl)
        following = [j for _, steps in taken for j in steps.enqueue]
        if following:
            self._enqueue(following)
        stored: set[str] = set()
        for settlement, steps in taken:
            if steps.fire is not None and self._report(steps.fire, steps):
                stored.add(settlement.delivery.receipt)
        return stored

    def _enqueue(self, jobs: list[Job]) -> None:
        if not self.own_results:
            # The broker skips a job whose result it stores; a backend of its own it cannot
            # see: a step redelivered after its next step finished would run that again.
            done = self.producer.backends.results.stored([(j.queue, j.id) for j in jobs])
            jobs = [j for j in jobs if (j.queue, j.id) not in done]
        if jobs:
            self.producer.enqueue(jobs, plan_checked=True)

    def _report(self, fire: Fire, steps: NextSteps) -> bool:
        """Report a chord member (or a workflow's first failure, to its on_error record);
        True when the member's result went in with it."""
        producer = self.producer
        broker = producer.backends.broker
        if not isinstance(broker, ChordRecords):
            logger.error("Workflow step lost: %s keeps no chord records (the ChordRecords "
                         "tier)", type(broker).__name__)
            return False
        mine: Sequence[Result] = ()
        if steps.result is not None:
            if self.own_results:
                mine = (steps.result,)
            else:
                producer.backends.results.store([steps.result], self.ttl)
        built: list[tuple[list[Job], list[Message]]] = []

        def callback() -> list[Message]:
            built[:] = [producer.prepare(fire.callback, plan_checked=True)]
            return built[0][1]

        try:
            fired = broker.chord_member_done(fire.queue, fire.record, fire.member,
                                             fire.total, self.ttl, callback, results=mine)
        except BaseException as exc:
            if built:
                producer.announce_enqueued(built[0][0], (), exc)
            raise
        if built:
            jobs, messages = built[0]
            # A report that raced another one for the same member built it in vain: no hook.
            producer.announce_enqueued(jobs, {j.id for j in jobs} if fired else ())
            if fired and producer.durable_enqueue:
                # In already: sent again, it adds nothing and waits for a replica's word.
                broker.enqueue(messages, durable=True)
        return steps.result is not None
