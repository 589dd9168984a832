"""Looking at messages without leasing them (the admin tier's ``message`` and ``messages``),
for ``tinyq job`` and ``tinyq info``. Every test takes the ``admin`` fixture."""

from __future__ import annotations

from .._interfaces import Broker, BrokerAdmin
from .._types import QueueCounts
from ._support import GRACE, ContractBase, new_message, new_queue


class LookupContract(ContractBase):
    def test_message_finds_waiting_delayed_and_leased(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue = new_queue()
        waiting, leased = new_message(queue), new_message(queue)
        delayed = new_message(queue, due=self.now(broker) + 3600)
        broker.enqueue([leased])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.enqueue([waiting, delayed])
        found = admin.message(waiting.id, queue)
        assert found is not None
        assert (found.message.id, found.message.body, found.attempts) == (
            waiting.id, waiting.body, 0)
        found = admin.message(delayed.id, queue)
        assert found is not None and found.message.body == delayed.body
        assert found.message.due is not None and delayed.due is not None
        assert abs(found.message.due - delayed.due) < 1
        found = admin.message(leased.id, queue)
        assert found is not None and found.message.body == leased.body
        assert found.attempts == 1
        assert admin.message(leased.id, new_queue()) is None  # per queue
        assert admin.message(new_message(queue).id, queue) is None
        broker.ack([delivery])
        assert admin.message(leased.id, queue) is None

    def test_message_never_leases(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        for _ in range(2):
            assert admin.message(message.id, queue) is not None
            assert admin.messages(queue) != []
        assert admin.count_leased(queue) == 0
        [delivery] = self.reserve_exactly(broker, queue, 1)
        assert delivery.attempts == 1

    def test_messages_pages_due_first_then_delayed(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue, other = new_queue(), new_queue()
        now = self.now(broker)
        later = new_message(queue, due=now + 7200)
        sooner = new_message(queue, due=now + 3600)
        due = [new_message(queue) for _ in range(5)]
        broker.enqueue([later, sooner])
        for message in due:  # one at a time: their order is the order sent
            broker.enqueue([message])
        broker.enqueue([new_message(other)])
        everything = admin.messages(queue, 0, 100)
        assert [m.id for m in everything] == [m.id for m in due] + [sooner.id, later.id]
        assert everything[0].body == due[0].body
        pages = [admin.messages(queue, offset, 3) for offset in (0, 3, 6)]
        assert [[m.id for m in page] for page in pages] == [
            [m.id for m in due[:3]], [due[3].id, due[4].id, sooner.id], [later.id]]
        assert admin.messages(queue, 7, 3) == []
        assert admin.messages(new_queue()) == []

    def test_messages_leaves_out_leased_ones(self, broker: Broker, admin: BrokerAdmin) -> None:
        queue = new_queue()
        first, second = new_message(queue), new_message(queue)
        broker.enqueue([first])
        broker.enqueue([second])
        broker.reserve([queue], 1, GRACE)
        assert [m.id for m in admin.messages(queue)] == [second.id]

    def test_counts_split_a_queue_by_where_its_messages_are(
        self, broker: Broker, admin: BrokerAdmin
    ) -> None:
        queue, other = new_queue(), new_queue()
        assert admin.counts(queue) == QueueCounts(0, 0, 0, 0)
        broker.enqueue([new_message(queue) for _ in range(3)])
        broker.enqueue([new_message(queue, due=self.now(broker) + 3600) for _ in range(2)])
        broker.enqueue([new_message(other)])
        first, second = self.reserve_exactly(broker, queue, 2)
        broker.dead_letter(first, "bad")
        assert admin.counts(queue) == QueueCounts(ready=1, scheduled=2, leased=1, dead=1)
        assert admin.counts(other) == QueueCounts(1, 0, 0, 0)  # per queue
        broker.ack([second])
        admin.requeue_dead_letters(queue)
        assert admin.counts(queue) == QueueCounts(ready=2, scheduled=2, leased=0, dead=0)
