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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._types import Job, Message
from .._workflow_interfaces import ChordRecords, ChordReport
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
        reports = [(s, steps.fire, steps) for s, steps in taken if steps.fire is not None]
        return self._report(reports) if reports else set()

    def _enqueue(self, jobs: list[Job]) -> None:
        if not self.own_results:
            # The broker skips a job whose result it stores; a backend of its own it cannot
            # see: a step redelivered after its next step finished would run that again.
            done = self.producer.backends.results.stored([(j.queue, j.id) for j in jobs])
            jobs = [j for j in jobs if (j.queue, j.id) not in done]
        if jobs:
            self.producer.enqueue(jobs, plan_checked=True)

    def _report(self, reports: list[tuple[Settlement, Fire, NextSteps]]) -> set[str]:
        """Report the batch's chord members (and workflows' first failures, to their
        on_error records) in one call; the receipts of those whose result went with it."""
        producer = self.producer
        broker = producer.backends.broker
        if not isinstance(broker, ChordRecords):
            logger.error("Workflow step lost: %s keeps no chord records (the ChordRecords "
                         "tier)", type(broker).__name__)
            return set()
        own, stored = self.own_results, set()
        mine = [steps.result for _, _, steps in reports if steps.result is not None]
        if mine and not own:  # a backend of its own: before the reports, on their own
            producer.backends.results.store(mine, self.ttl)
        built: dict[int, tuple[list[Job], list[Message]]] = {}

        def callback(index: int, fire: Fire) -> Callable[[], list[Message]]:
            def build() -> list[Message]:
                built[index] = producer.prepare(fire.callback, plan_checked=True)
                return built[index][1]
            return build

        batch = []
        for index, (settlement, fire, steps) in enumerate(reports):
            if steps.result is not None:
                stored.add(settlement.delivery.receipt)
            batch.append(ChordReport(fire.queue, fire.record, fire.member, fire.total,
                                     callback(index, fire),
                                     (steps.result,) if own and steps.result else ()))
        try:
            fired = broker.chord_members_done(batch, self.ttl)
        except BaseException as exc:
            for jobs, _ in built.values():
                producer.announce_enqueued(jobs, (), exc)
            raise
        for index, (jobs, messages) in built.items():
            # A report that raced another one for the same member built it in vain: no hook.
            producer.announce_enqueued(jobs, {j.id for j in jobs} if fired[index] else ())
            if fired[index] and producer.durable_enqueue:
                # In already: sent again, it adds nothing and waits for a replica's word.
                producer.backends.broker.enqueue(messages, durable=True)
        return stored
