"""The admin tier (:class:`BrokerAdmin`): status, sizes, queues, purges and the dead-letter
store. Every test takes the ``admin`` fixture, which skips them for a broker without the tier.
"""

from __future__ import annotations

import attrs

from .._interfaces import Broker, BrokerAdmin, ResultBackend
from .._types import Result
from ._redelivery import late_reports
from ._support import GRACE, ContractBase, new_message, new_queue


class AdminContract(ContractBase):
    # -- status, size, count_leased ------------------------------------------------------------

    def test_status_follows_the_message(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        message = new_message(queue)
        assert admin.status(message.id, queue) == "unknown"
        broker.enqueue([message])
        assert admin.status(message.id, queue) == "queued"
        assert admin.status(message.id, new_queue()) == "unknown"  # per queue
        [delivery] = self.reserve_exactly(broker, queue, 1)
        assert admin.status(message.id, queue) == "started"
        broker.ack([delivery])
        assert admin.status(message.id, queue) == "unknown"

    def test_size_and_count_leased_follow_the_messages(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue, other = new_queue(), new_queue()
        broker.enqueue([new_message(queue) for _ in range(50)] + [new_message(other)])
        assert (admin.size(queue), admin.count_leased(queue)) == (50, 0)
        deliveries = broker.reserve([queue], 100, GRACE)
        assert (admin.size(queue), admin.count_leased(queue)) == (0, 50)
        assert (admin.size(other), admin.count_leased(other)) == (1, 0)  # per queue
        broker.ack(deliveries[:20])
        broker.nack(deliveries[20])
        assert (admin.size(queue), admin.count_leased(queue)) == (1, 29)
        broker.ack(deliveries[21:])
        assert (admin.size(queue), admin.count_leased(queue)) == (1, 0)

    def test_size_counts_waiting_not_leased(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue, other = new_queue(), new_queue()
        assert admin.size(queue) == 0
        broker.enqueue([new_message(queue), new_message(queue), new_message(other)])
        broker.enqueue([new_message(queue, due=self.now(broker) + 3600)])
        assert admin.size(queue) == 3
        self.reserve_exactly(broker, queue, 1)
        assert (admin.size(queue), admin.size(other)) == (2, 1)

    def test_enqueueing_a_waiting_job_id_again_keeps_one(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue = new_queue()
        message = new_message(queue)
        later = new_message(queue, due=self.now(broker) + 100)
        broker.enqueue([message, later])
        broker.enqueue([message, later])
        assert admin.size(queue) == 2

    def test_status_of_a_delayed_message(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        delay = broker.visibility_timeout
        soon = new_message(queue, due=self.now(broker) + delay)
        later = new_message(queue, due=self.now(broker) + 100 * delay)
        broker.enqueue([later, soon])
        assert admin.status(soon.id, queue) == "scheduled"
        assert admin.size(queue) == 2
        self.advance(broker, delay * 1.25)
        broker.move_due([queue])
        states = (admin.status(soon.id, queue), admin.status(later.id, queue))
        assert states == ("queued", "scheduled")

    def test_status_of_expired_and_renewed_leases(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue), new_message(queue)])
        renewed, expired = self.reserve_exactly(broker, queue, 2)
        assert admin.count_leased(queue) == 2
        # Renewed after 60% of the lease and checked after 120%: expired unless renew worked.
        self.advance(broker, broker.visibility_timeout * 0.6)
        broker.renew([renewed])
        self.advance(broker, broker.visibility_timeout * 0.6)
        assert broker.recover([queue]) == 1
        assert admin.status(renewed.id, queue) == "started"
        assert admin.status(expired.id, queue) == "queued"
        assert (admin.size(queue), admin.count_leased(queue)) == (1, 1)

    def test_status_of_a_nacked_message(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.nack(delivery)
        assert admin.status(message.id, queue) == "queued"
        assert (admin.size(queue), admin.count_leased(queue)) == (1, 0)
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.nack(delivery, delay=3600)
        assert admin.status(message.id, queue) == "scheduled"
        assert (admin.size(queue), admin.count_leased(queue)) == (1, 0)

    def test_a_late_report_leaves_the_redelivery_started(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue = new_queue()
        reports = late_reports(broker, queue)
        pairs = self.lease_twice(broker, queue, len(reports))
        for (kind, report), (old, _) in zip(reports.items(), pairs, strict=True):
            report(old)
            assert admin.status(old.id, queue) == "started", f"after a late {kind}"
            assert admin.count_leased(queue) == len(pairs), f"after a late {kind}"
            assert admin.size(queue) == 0, f"a late {kind} put the job back"
            assert admin.dead_letters(queue) == [], f"a late {kind} made a dead letter"
        broker.ack([new for _, new in pairs])
        assert {admin.status(old.id, queue) for old, _ in pairs} == {"unknown"}
        assert admin.count_leased(queue) == 0

    # -- queues and purge ----------------------------------------------------------------------

    def test_queues_lists_those_holding_messages(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        # Every queue a message was sent to, drained or not: the known queues.
        waiting, delayed, leased, dead, emptied, unused = (new_queue() for _ in range(6))
        broker.enqueue([new_message(q) for q in (waiting, leased, dead, emptied)])
        broker.enqueue([new_message(delayed, due=self.now(broker) + 3600)])
        self.reserve_exactly(broker, leased, 1)
        broker.dead_letter(self.reserve_exactly(broker, dead, 1)[0], "bad")
        broker.ack(self.reserve_exactly(broker, emptied, 1))
        names = admin.queues()
        assert names == sorted(names)
        assert {waiting, delayed, leased, dead, emptied} <= set(names)
        assert unused not in names
        admin.purge(waiting)
        admin.purge_dead_letters(dead)
        assert {waiting, dead, emptied} <= set(admin.queues())  # still known

    def test_purge_removes_waiting_messages(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue, other = new_queue(), new_queue()
        leased, waiting = new_message(queue), new_message(queue)
        delayed = new_message(queue, due=self.now(broker) + 3600)
        broker.enqueue([leased])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.enqueue([waiting, delayed, new_message(other)])

        assert admin.purge(queue) == 2  # waiting and delayed, not the leased one
        assert (admin.size(queue), admin.size(other)) == (0, 1)
        assert admin.status(waiting.id, queue) == "unknown"
        assert admin.status(delayed.id, queue) == "unknown"
        assert admin.status(leased.id, queue) == "started"
        assert broker.reserve([queue], 1, 0) == []
        assert broker.move_due([queue]) is None  # the delayed one is gone too
        assert admin.purge(queue) == 0
        broker.ack([delivery])

    # -- dead letters --------------------------------------------------------------------------

    def test_dead_letter_records_why(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        self.reserve_exactly(broker, queue, 1)  # attempt 1, given up by "crashing"
        self.expire_leases(broker)
        assert broker.recover([queue]) == 1
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.dead_letter(delivery, "max retries", "ValueError: boom")

        [letter] = admin.dead_letters(queue)
        assert (letter.message.id, letter.message.body) == (message.id, message.body)
        assert (letter.reason, letter.error) == ("max retries", "ValueError: boom")
        assert letter.attempts == 2
        assert abs(letter.failed_at - self.now(broker)) < 60
        assert admin.status(message.id, queue) == "unknown"
        assert (admin.size(queue), admin.count_leased(queue)) == (0, 0)
        assert admin.dead_letters(new_queue()) == []  # per queue

    def test_requeue_dead_letters(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        messages = [new_message(queue) for _ in range(3)]
        broker.enqueue(messages)
        for delivery in sorted(self.reserve_exactly(broker, queue, 3), key=lambda d: d.id):
            broker.dead_letter(delivery, f"bad {delivery.id}")
        order = sorted(m.id for m in messages)
        assert [d.message.id for d in admin.dead_letters(queue)] == order  # oldest first
        assert [d.message.id for d in admin.dead_letters(queue, limit=1)] == order[:1]

        assert admin.requeue_dead_letters(queue, [order[1]]) == 1
        assert [d.message.id for d in admin.dead_letters(queue)] == [order[0], order[2]]
        assert admin.status(order[1], queue) == "queued"
        [again] = self.reserve_exactly(broker, queue, 1)
        assert (again.id, again.attempts) == (order[1], 1)

        assert admin.requeue_dead_letters(queue) == 2
        assert admin.dead_letters(queue) == []
        assert {d.id for d in self.reserve_exactly(broker, queue, 2)} == {order[0], order[2]}

    def test_a_dead_letter_takes_its_failure_and_new_body_with_it(
        self, broker: Broker, admin: BrokerAdmin, results: ResultBackend
    ) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        # The worker dead-letters the job as first sent (its retry count reset).
        fresh = attrs.evolve(delivery, message=attrs.evolve(delivery.message, body=b"fresh"))
        failure = Result(message.id, b"failed", queue)
        broker.dead_letter(fresh, "failed after 3 attempt(s)", "E: x", result=failure,
                           result_ttl=60)
        assert results.get(message.id, queue=queue) == failure
        [letter] = admin.dead_letters(queue)
        assert (letter.message.id, letter.message.body) == (message.id, b"fresh")

        # Requeued, it is waiting again: its failure is gone, its new body delivered.
        assert admin.requeue_dead_letters(queue) == 1
        assert results.get(message.id, queue=queue) is None
        assert admin.status(message.id, queue) == "queued"
        [again] = self.reserve_exactly(broker, queue, 1)
        assert (again.id, again.message.body, again.attempts) == (message.id, b"fresh", 1)

    def test_purge_dead_letters(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue), new_message(queue)])
        for delivery in self.reserve_exactly(broker, queue, 2):
            broker.dead_letter(delivery, "bad")
        assert admin.purge_dead_letters(queue) == 2
        assert admin.dead_letters(queue) == []
        assert admin.requeue_dead_letters(queue, None) == 0
        assert broker.reserve([queue], 1, 0) == []

    def test_purge_some_dead_letters_by_id(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue) for _ in range(3)])
        deliveries = self.reserve_exactly(broker, queue, 3)
        for delivery in deliveries:
            broker.dead_letter(delivery, "bad")
        first, second, third = (d.id for d in deliveries)
        assert admin.purge_dead_letters(queue, [first, third, "no-such-id"]) == 2
        assert [d.message.id for d in admin.dead_letters(queue)] == [second]
        assert admin.purge_dead_letters(queue, [first]) == 0  # gone already
        assert admin.requeue_dead_letters(queue) == 1  # the one left is still a dead letter
