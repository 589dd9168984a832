"""The schedule-records tier (:class:`ScheduleRecords`): a schedule's last tick only moves
forward, and the claim that moves it enqueues the tick's job in the same step, so of claims
racing for one tick exactly one wins and one job is queued. Every test takes the
``schedules`` fixture, which skips them for a broker without the tier."""

from __future__ import annotations

import threading
import uuid

import pytest

from .._control_interfaces import ScheduleRecords
from .._errors import BrokerError
from .._interfaces import Broker
from ._support import SHORT_WAIT, ContractBase, new_message, new_queue

TICK = 1_700_000_000.0  # a Unix time; records are kept to the millisecond


def new_schedule() -> str:
    return f"contract-schedule-{uuid.uuid4().hex[:12]}"


class ScheduleContract(ContractBase):
    @pytest.fixture
    def schedules(self, broker: Broker) -> ScheduleRecords:
        """The broker as its schedule-records tier; those tests are skipped without it."""
        if not isinstance(broker, ScheduleRecords):
            pytest.skip(f"{type(broker).__name__} is not a ScheduleRecords: tier not offered")
        return broker

    def test_a_claim_records_the_tick_and_enqueues_its_message(
        self, broker: Broker, schedules: ScheduleRecords
    ) -> None:
        queue, name = new_queue(), new_schedule()
        message = new_message(queue)
        assert schedules.claim_tick(queue, name, TICK, message) is True
        assert schedules.last_ticks(queue, [name]) == {name: TICK}
        [delivery] = self.reserve_exactly(broker, queue, 1)  # a normal message
        assert (delivery.message.id, delivery.message.body, delivery.attempts) == (
            message.id, message.body, 1)
        broker.ack([delivery])

    def test_the_record_only_moves_forward(self, schedules: ScheduleRecords) -> None:
        queue, name = new_queue(), new_schedule()
        assert schedules.claim_tick(queue, name, TICK) is True
        assert schedules.claim_tick(queue, name, TICK) is False  # the same tick
        assert schedules.claim_tick(queue, name, TICK - 60) is False  # an earlier one
        assert schedules.last_ticks(queue, [name]) == {name: TICK}
        assert schedules.claim_tick(queue, name, TICK + 0.5) is True
        assert schedules.last_ticks(queue, [name]) == {name: TICK + 0.5}

    def test_a_losing_claim_enqueues_nothing(
        self, broker: Broker, schedules: ScheduleRecords
    ) -> None:
        queue, name = new_queue(), new_schedule()
        first, second, earlier = new_message(queue), new_message(queue), new_message(queue)
        assert schedules.claim_tick(queue, name, TICK, first) is True
        assert schedules.claim_tick(queue, name, TICK, second) is False
        assert schedules.claim_tick(queue, name, TICK - 1, earlier) is False
        assert self.reserve_all(broker, queue) == [first.id]

    def test_a_claim_without_a_message_records_only(
        self, broker: Broker, schedules: ScheduleRecords
    ) -> None:
        queue, name = new_queue(), new_schedule()
        assert schedules.claim_tick(queue, name, TICK) is True
        assert broker.reserve([queue], 1, SHORT_WAIT) == []
        message = new_message(queue)
        assert schedules.claim_tick(queue, name, TICK + 60, message) is True
        assert self.reserve_all(broker, queue) == [message.id]

    def test_last_ticks_per_queue_and_schedule(self, schedules: ScheduleRecords) -> None:
        queue, other = new_queue(), new_queue()
        a, b, never = new_schedule(), new_schedule(), new_schedule()
        assert schedules.last_ticks(queue, [a, b]) == {}
        schedules.claim_tick(queue, a, TICK)
        schedules.claim_tick(queue, b, TICK + 1.25)
        schedules.claim_tick(other, a, TICK + 99)  # the same name in another queue
        assert schedules.last_ticks(queue, [a, b, never]) == {a: TICK, b: TICK + 1.25}
        assert schedules.last_ticks(queue, []) == {}
        assert schedules.last_ticks(other, [a, b]) == {a: TICK + 99}
        assert schedules.claim_tick(other, b, TICK) is True  # independent of queue's b

    def test_a_claimed_job_id_still_waiting_is_not_added_twice(
        self, broker: Broker, schedules: ScheduleRecords
    ) -> None:
        queue, name = new_queue(), new_schedule()
        message = new_message(queue)
        broker.enqueue([message])
        assert schedules.claim_tick(queue, name, TICK, message) is True  # as enqueue would
        assert self.reserve_all(broker, queue) == [message.id]

    def test_of_concurrent_claims_exactly_one_wins(
        self, broker: Broker, schedules: ScheduleRecords
    ) -> None:
        queue, name = new_queue(), new_schedule()
        messages = [new_message(queue) for _ in range(8)]
        barrier = threading.Barrier(len(messages))
        won: list[str] = []
        errors: list[BaseException] = []

        def claim(index: int) -> None:
            try:
                barrier.wait(timeout=10)
                if schedules.claim_tick(queue, name, TICK, messages[index]):
                    won.append(messages[index].id)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(messages))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert len(won) == 1
        assert self.reserve_all(broker, queue) == won

    def test_a_durable_claim_records_and_enqueues(
        self, broker: Broker, schedules: ScheduleRecords
    ) -> None:
        """``durable=True`` returns True, or (``durable_enqueue_refused``) raises BrokerError
        with the tick recorded and its message enqueued on the server that took them."""
        queue, name = new_queue(), new_schedule()
        message = new_message(queue)
        try:
            won = schedules.claim_tick(queue, name, TICK, message, durable=True)
        except BrokerError:
            assert self.durable_enqueue_refused, "a durable claim raised BrokerError"
        else:
            assert not self.durable_enqueue_refused, "a durable claim returned"
            assert won is True
        assert schedules.last_ticks(queue, [name]) == {name: TICK}
        assert self.reserve_all(broker, queue) == [message.id]
