"""The cancel tier (:class:`CancelRequests`): a waiting or delayed job is deleted, a leased one
flagged with its grace, and the flags read back, forgotten and expired. Every test takes the
``cancels`` fixture, which skips them for a broker without the tier."""

from __future__ import annotations

import pytest

from .._control_interfaces import CancelRequests
from .._interfaces import Broker, ResultBackend
from .._types import Result
from ._support import GRACE, ContractBase, new_message, new_queue


class CancelContract(ContractBase):
    @pytest.fixture
    def cancels(self, broker: Broker) -> CancelRequests:
        """The broker as its cancel tier; these tests are skipped without it."""
        if not isinstance(broker, CancelRequests):
            pytest.skip(f"{type(broker).__name__} is not a CancelRequests: tier not offered")
        return broker

    def test_cancel_removes_a_waiting_job(
        self, broker: Broker, cancels: CancelRequests
    ) -> None:
        queue = new_queue()
        doomed, kept = new_message(queue), new_message(queue)
        broker.enqueue([doomed, kept])
        assert cancels.cancel(doomed.id, queue, grace=None, ttl=60) == "removed"
        assert [d.id for d in broker.reserve([queue], 10, GRACE)] == [kept.id]
        assert broker.reserve([queue], 10, 0) == []  # never reserved after
        assert cancels.cancel_requests(queue, [doomed.id]) == {}  # removed, not flagged

    def test_cancel_removes_a_delayed_job(
        self, broker: Broker, cancels: CancelRequests
    ) -> None:
        queue = new_queue()
        delay = broker.visibility_timeout
        message = new_message(queue, due=self.now(broker) + delay)
        broker.enqueue([message])
        assert cancels.cancel(message.id, queue, grace=None, ttl=60) == "removed"
        self.advance(broker, delay * 1.5)
        broker.move_due([queue])
        assert broker.reserve([queue], 10, 0) == []

    def test_cancel_stores_the_given_result_of_a_removed_job(
        self, broker: Broker, cancels: CancelRequests, results: ResultBackend
    ) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        result = Result(message.id, b"cancelled-outcome", queue, ok=False)
        assert cancels.cancel(message.id, queue, grace=None, ttl=60, result=result,
                              result_ttl=60) == "removed"
        stored = results.get(message.id, 0, queue)
        assert stored is not None and stored.body == b"cancelled-outcome"
        broker.enqueue([message])  # a replay of a job with a stored outcome adds nothing
        assert broker.reserve([queue], 10, 0) == []

    def test_cancel_flags_a_leased_job_which_stays_ackable(
        self, broker: Broker, cancels: CancelRequests
    ) -> None:
        queue = new_queue()
        message, other = new_message(queue), new_message(queue)
        broker.enqueue([message, other])
        deliveries = self.reserve_exactly(broker, queue, 2)
        assert cancels.cancel(message.id, queue, grace=2.5, ttl=60) == "flagged"
        assert cancels.cancel_requests(queue, [message.id, other.id]) == {message.id: 2.5}
        assert cancels.cancel_requests(new_queue(), [message.id]) == {}  # per queue
        lost = broker.ack(deliveries)
        assert not lost  # the flag does not take the lease away
        assert broker.reserve([queue], 10, 0) == []

    def test_a_later_request_replaces_the_earlier_one(
        self, broker: Broker, cancels: CancelRequests
    ) -> None:
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        self.reserve_exactly(broker, queue, 1)
        assert cancels.cancel(message.id, queue, grace=5.0, ttl=60) == "flagged"
        assert cancels.cancel(message.id, queue, grace=None, ttl=60) == "flagged"
        assert cancels.cancel_requests(queue, [message.id]) == {message.id: None}

    def test_cancel_of_an_absent_job_changes_nothing(
        self, broker: Broker, cancels: CancelRequests
    ) -> None:
        queue = new_queue()
        message = new_message(queue)
        assert cancels.cancel(message.id, queue, grace=None, ttl=60) == "absent"
        broker.enqueue([message])
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.ack([delivery])
        assert cancels.cancel(message.id, queue, grace=None, ttl=60) == "absent"
        assert cancels.cancel_requests(queue, [message.id]) == {}

    def test_forget_deletes_a_request(self, broker: Broker, cancels: CancelRequests) -> None:
        queue = new_queue()
        first, second = new_message(queue), new_message(queue)
        broker.enqueue([first, second])
        self.reserve_exactly(broker, queue, 2)
        for message in (first, second):
            assert cancels.cancel(message.id, queue, grace=1.0, ttl=60) == "flagged"
        cancels.forget_cancel_request(queue, first.id)
        cancels.forget_cancel_request(queue, "no-such-job")  # no error
        assert cancels.cancel_requests(queue, [first.id, second.id]) == {second.id: 1.0}

    def test_a_request_expires_after_its_ttl(
        self, broker: Broker, cancels: CancelRequests
    ) -> None:
        queue = new_queue()
        short, long = new_message(queue), new_message(queue)
        broker.enqueue([short, long])
        self.reserve_exactly(broker, queue, 2)
        ttl = broker.visibility_timeout
        assert cancels.cancel(short.id, queue, grace=None, ttl=ttl) == "flagged"
        assert cancels.cancel(long.id, queue, grace=None, ttl=ttl * 100) == "flagged"
        self.advance(broker, ttl * 1.5)
        assert cancels.cancel_requests(queue, [short.id, long.id]) == {long.id: None}
