"""Required tier: enqueue, reserve and ack, seen through ``Broker`` methods only."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from .._errors import BrokerError, EnqueueError
from .._interfaces import Broker
from ._support import (
    AT_ONCE,
    GRACE,
    LONG_WAIT,
    ContractBase,
    later,
    new_message,
    new_queue,
)


class DeliveryContract(ContractBase):
    def test_enqueue_reserve_ack_round_trip(self, broker: Broker) -> None:
        queue = new_queue()
        message = new_message(queue, b"\x00 opaque \xff bytes")
        broker.enqueue([message])

        [delivery] = self.reserve_exactly(broker, queue, 1)
        assert (delivery.id, delivery.queue) == (message.id, queue)
        assert delivery.message.body == message.body
        assert delivery.attempts == 1
        assert broker.reserve([queue], 1, 0) == []  # leased: nobody else gets it

        broker.ack([delivery])
        # An acked message is gone for good, even once its old lease would have run out.
        self.expire_leases(broker)
        assert broker.recover([queue]) == 0
        assert broker.reserve([queue], 1, 0) == []

    def test_reserve_respects_count(self, broker: Broker) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue) for _ in range(5)])
        first = self.reserve_exactly(broker, queue, 2)
        rest = broker.reserve([queue], 10, GRACE)
        assert len(rest) == 3
        assert len({d.id for d in first + rest}) == 5
        broker.ack(first + rest)  # several at once
        assert broker.reserve([queue], 10, 0) == []
        # Gone: enqueued again, they are new jobs (had one stayed leased, it would be skipped).
        broker.enqueue([d.message for d in first + rest])
        again = broker.reserve([queue], 10, GRACE)
        assert sorted((d.id, d.attempts) for d in again) == sorted(
            (d.id, 1) for d in first + rest
        )

    def test_reserving_none_returns_at_once_and_leases_nothing(self, broker: Broker) -> None:
        # The worker asks for 0 when it only reports (settle without a fetch).
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        started = time.monotonic()
        assert broker.reserve([queue], 0, LONG_WAIT) == []
        assert time.monotonic() - started < AT_ONCE
        assert [d.id for d in self.reserve_exactly(broker, queue, 1)] == [message.id]

    def test_enqueueing_a_waiting_job_id_again_adds_nothing(self, broker: Broker) -> None:
        # A producer retrying after a lost reply must not create a second copy.
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        broker.enqueue([message])
        [delivery] = broker.reserve([queue], 10, GRACE)
        assert delivery.id == message.id
        assert broker.reserve([queue], 10, 0) == []
        broker.enqueue([message])  # leased: still the same job
        assert broker.reserve([queue], 1, 0) == []
        broker.ack([delivery])
        broker.enqueue([message])  # done: a new run of that id is a new job
        assert [d.id for d in self.reserve_exactly(broker, queue, 1)] == [message.id]

    def test_enqueueing_a_delayed_job_id_again_adds_nothing(self, broker: Broker) -> None:
        queue = new_queue()
        delay = broker.visibility_timeout
        message = new_message(queue, due=self.now(broker) + delay)
        broker.enqueue([message])
        broker.enqueue([message])
        self.advance(broker, delay * 1.25)
        broker.move_due([queue])
        [delivery] = broker.reserve([queue], 10, GRACE)
        assert delivery.id == message.id
        assert broker.reserve([queue], 10, 0) == []

    def test_enqueue_many_in_one_call(self, broker: Broker) -> None:
        queue = new_queue()
        broker.enqueue([])  # nothing to add is not an error
        messages = [new_message(queue) for _ in range(50)]
        broker.enqueue(messages)
        deliveries = broker.reserve([queue], 100, GRACE)
        assert {d.id: d.message.body for d in deliveries} == {m.id: m.body for m in messages}

    def test_a_refused_enqueue_names_exactly_what_went_in(
        self, refusing_broker: tuple[Broker, Callable[[], None]]
    ) -> None:
        """A broker that takes only part of a batch raises EnqueueError whose
        ``enqueued_ids`` are exactly the messages it took; the producer then sends the rest
        again, and each message is there once."""
        broker, make_room = refusing_broker
        queue = new_queue()
        messages = [new_message(queue) for _ in range(6000)]
        with pytest.raises(EnqueueError) as info:
            broker.enqueue(messages)
        went_in = list(info.value.enqueued_ids)
        assert set(went_in) <= {m.id for m in messages}
        make_room()
        assert sorted(self.reserve_all(broker, queue)) == sorted(went_in)
        taken = set(went_in)
        rest = [m for m in messages if m.id not in taken]
        broker.enqueue(rest)
        assert sorted(self.reserve_all(broker, queue)) == sorted(m.id for m in rest)

    def test_durable_enqueue_adds_each_message_once(self, broker: Broker) -> None:
        """``durable=True`` returns with the messages enqueued, or (``durable_enqueue_refused``)
        raises BrokerError; either way a producer's retry adds no second copy."""
        queue = new_queue()
        messages = [new_message(queue), new_message(queue)]
        refused = False
        try:
            broker.enqueue(messages, durable=True)
        except BrokerError:
            refused = True
        assert refused == self.durable_enqueue_refused, (
            "durable enqueue raised BrokerError" if refused else "durable enqueue returned"
        ) + f"; durable_enqueue_refused is {self.durable_enqueue_refused}"
        if not refused:
            assert {d.id for d in self.reserve_exactly(broker, queue, 2)} == {
                m.id for m in messages
            }
        broker.enqueue(messages)  # the retry the BrokerError asks for, or a needless one
        if not refused:
            assert broker.reserve([queue], 10, 0) == []  # leased: not added again
            return
        deliveries = broker.reserve([queue], 10, GRACE)
        deliveries += broker.reserve([queue], 10, 0)
        assert sorted(d.id for d in deliveries) == sorted(m.id for m in messages)

    def test_concurrent_reservers_never_share_a_message(self, broker: Broker) -> None:
        queue = new_queue()
        messages = [new_message(queue) for _ in range(120)]
        broker.enqueue(messages)
        seen: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(6)

        def consume() -> None:
            start.wait(timeout=10)
            while deliveries := broker.reserve([queue], 4, 0.1):
                # Acked at once, so a broker that recovers expired leases by itself could not
                # legitimately hand one out twice during the test.
                broker.ack(deliveries)
                with lock:
                    seen.extend(d.id for d in deliveries)

        with contextlib.ExitStack() as stack:
            for _ in range(6):
                stack.enter_context(later(consume, delay=0))
        assert sorted(seen) == sorted(m.id for m in messages)  # each exactly once

    def test_earlier_queues_come_first(self, broker: Broker) -> None:
        high, low = new_queue(), new_queue()
        broker.enqueue([new_message(low) for _ in range(3)] + [new_message(high)])
        [first] = broker.reserve([high, low], 1, GRACE)
        assert first.queue == high

        broker.enqueue([new_message(high)])
        deliveries = broker.reserve([high, low], 3, GRACE)
        # High has one message; the rest of the batch is filled up from low.
        assert sorted(d.queue == high for d in deliveries) == [False, False, True]
        # What is left: nothing in high, one in low.
        assert broker.reserve([high], 1, 0) == []
        self.reserve_exactly(broker, low, 1)
        assert broker.reserve([low], 1, 0) == []

