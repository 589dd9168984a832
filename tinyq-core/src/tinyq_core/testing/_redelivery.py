"""Required tier: what happens to a message after it is leased (lease expiry and renewal,
delayed messages, nack, dead letters, late reports), seen through ``Broker`` methods only."""

from __future__ import annotations

from collections.abc import Callable

from .._interfaces import Broker
from .._types import Delivery, SettleRequest
from ._support import GRACE, ContractBase, new_message, new_queue


def late_reports(broker: Broker, queue: str) -> dict[str, Callable[[Delivery], object]]:
    """Every way a consumer can report on its delivery, by name. Each returns what it
    released: renew and ack may name the delivery itself as lost, which releases nothing."""
    return {
        "renew": lambda old: [d for d in broker.renew([old]) or () if d != old],
        "ack": lambda old: [d for d in broker.ack([old]) or () if d != old],
        "settle_and_reserve": lambda old: broker.settle_and_reserve(
            SettleRequest(acks=[old], queues=[queue], count=1, timeout=0)
        ),
        "nack": lambda old: broker.nack(old, body=b"from the stale consumer"),
        "dead_letter": lambda old: broker.dead_letter(old, "stale", "TimeoutError: late"),
    }


class RedeliveryContract(ContractBase):
    # -- leases --------------------------------------------------------------------------------

    def test_expired_lease_is_redelivered(self, broker: Broker) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        self.reserve_exactly(broker, queue, 1)
        assert broker.recover([queue]) == 0  # not expired yet

        self.expire_leases(broker)
        assert broker.recover([queue]) == 1
        [again] = self.reserve_exactly(broker, queue, 1)
        assert (again.id, again.message.body, again.attempts) == (message.id, message.body, 2)

    def test_renewed_lease_is_not_redelivered(self, broker: Broker) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue)])
        delivery = self.reserve_exactly(broker, queue, 1)
        # Renewed after 60% of the lease and checked after 120%: expired unless renew worked.
        self.advance(broker, broker.visibility_timeout * 0.6)
        broker.renew(delivery)
        self.advance(broker, broker.visibility_timeout * 0.6)
        assert broker.recover([queue]) == 0
        assert broker.reserve([queue], 1, 0) == []

    def test_a_late_report_leaves_the_redelivery_alone(self, broker: Broker) -> None:
        """A consumer that stalled past its lease reports on its old delivery after the
        message was recovered and leased again: that must not touch the new lease."""
        queue = new_queue()
        reports = late_reports(broker, queue)
        pairs = self.lease_twice(broker, queue, len(reports))
        for (kind, report), (old, _) in zip(reports.items(), pairs, strict=True):
            reserved = report(old)  # settle_and_reserve's reply: nothing else is waiting
            assert reserved in (None, []), f"a late {kind} released the job: {reserved}"
            assert broker.reserve([queue], 10, 0) == [], f"a late {kind} released the job"
            broker.enqueue([old.message])  # a producer's retry while the job runs
            assert broker.reserve([queue], 10, 0) == [], (
                f"after a late {kind}, enqueueing the running job's id again added a copy"
            )
        broker.ack([new for _, new in pairs])  # the current consumers finish
        assert broker.reserve([queue], 10, 0) == []
        # Done: the same ids are new jobs now.
        broker.enqueue([old.message for old, _ in pairs])
        again = broker.reserve([queue], 10, GRACE)
        assert sorted((d.id, d.attempts) for d in again) == [(old.id, 1) for old, _ in pairs]

    # -- delayed messages ----------------------------------------------------------------------

    def test_delayed_message_waits_until_due(self, broker: Broker) -> None:
        queue = new_queue()
        assert broker.move_due([queue]) is None  # a fresh queue has nothing delayed
        delay = broker.visibility_timeout
        soon = new_message(queue, due=self.now(broker) + delay)
        later = new_message(queue, due=self.now(broker) + 100 * delay)
        broker.enqueue([later, soon])

        due_in = broker.move_due([queue])
        assert due_in is not None and 0 < due_in <= delay + 0.05  # the nearer one counts
        self.advance(broker, delay * 0.5)
        assert broker.move_due([queue]) is not None
        assert broker.reserve([queue], 2, 0) == []  # not before it is due

        self.advance(broker, delay * 0.75)
        due_in = broker.move_due([queue])
        assert due_in is not None and delay * 90 < due_in <= delay * 100  # now the later one
        [delivery] = broker.reserve([queue], 2, GRACE)
        assert (delivery.id, delivery.message.body, delivery.attempts) == (soon.id, soon.body, 1)

    # -- nack ----------------------------------------------------------------------------------

    def test_nack_puts_the_message_back(self, broker: Broker) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.nack(delivery)
        [again] = self.reserve_exactly(broker, queue, 1)
        assert (again.id, again.message.body, again.attempts) == (message.id, message.body, 1)
        assert broker.reserve([queue], 1, 0) == []  # once

    def test_nack_with_delay_delays_the_message(self, broker: Broker) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        delay = broker.visibility_timeout
        broker.nack(delivery, delay=delay)
        assert broker.move_due([queue]) is not None
        assert broker.reserve([queue], 1, 0) == []

        self.advance(broker, delay * 1.25)
        assert broker.move_due([queue]) is None
        [again] = self.reserve_exactly(broker, queue, 1)
        assert (again.id, again.attempts) == (message.id, 1)

    def test_nack_with_a_body_replaces_it(self, broker: Broker) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        for body in (b"retry 1", b""):  # empty is a body too, not "keep the old one"
            [delivery] = self.reserve_exactly(broker, queue, 1)
            broker.nack(delivery, body=body)
            [delivery] = self.reserve_exactly(broker, queue, 1)
            assert (delivery.id, delivery.message.body) == (message.id, body)
            broker.nack(delivery)  # without a body: keep the current one
            [delivery] = self.reserve_exactly(broker, queue, 1)
            assert delivery.message.body == body
            broker.nack(delivery)

    # -- dead letters --------------------------------------------------------------------------

    def test_dead_letter_is_not_redelivered(self, broker: Broker) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue)])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.dead_letter(delivery, "max retries", "ValueError: boom")
        assert broker.reserve([queue], 1, 0) == []
        # Its lease is gone with it: expiry does not bring it back.
        self.expire_leases(broker)
        assert broker.recover([queue]) == 0
        assert broker.reserve([queue], 1, 0) == []
