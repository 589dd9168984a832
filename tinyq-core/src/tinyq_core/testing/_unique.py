"""The unique-locks tier (:class:`UniqueLocks`): a lock per queue and key, held while its
job's message is waiting, delayed or leased, or for the time kept after it finished. Every
test takes the ``unique`` fixture, which skips them for a broker without the tier."""

from __future__ import annotations

import threading
import uuid

import pytest

from .._control_interfaces import UniqueLocks
from .._errors import BrokerError
from .._interfaces import Broker
from ._support import GRACE, ContractBase, new_message, new_queue

TTL = 3600.0  # a lock record's bound where a test does not look at it


def new_key() -> str:
    return f"contract-key-{uuid.uuid4().hex[:12]}"


class UniqueContract(ContractBase):
    @pytest.fixture
    def unique(self, broker: Broker) -> UniqueLocks:
        """The broker as its unique-locks tier; those tests are skipped without it."""
        if not isinstance(broker, UniqueLocks):
            pytest.skip(f"{type(broker).__name__} is not a UniqueLocks: tier not offered")
        return broker

    def test_a_free_lock_is_taken_and_its_message_delivered(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        message = new_message(queue)
        assert unique.enqueue_unique(message, key, TTL) == message.id
        [delivery] = self.reserve_exactly(broker, queue, 1)
        assert (delivery.id, delivery.message.body) == (message.id, message.body)

    def test_the_lock_holds_while_waiting_and_leased_and_frees_on_ack(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        first = new_message(queue)
        assert unique.enqueue_unique(first, key, TTL) == first.id
        assert unique.enqueue_unique(new_message(queue), key, TTL) == first.id  # waiting
        [delivery] = self.reserve_exactly(broker, queue, 1)
        assert unique.enqueue_unique(new_message(queue), key, TTL) == first.id  # leased
        assert broker.reserve([queue], 10, 0) == []  # nothing else went in
        broker.ack([delivery])
        after = new_message(queue)
        assert unique.enqueue_unique(after, key, TTL) == after.id
        assert self.reserve_all(broker, queue) == [after.id]

    def test_the_lock_holds_while_delayed_and_through_a_retry(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        delayed = new_message(queue, due=self.now(broker) + 3600)
        assert unique.enqueue_unique(delayed, key, TTL) == delayed.id
        assert unique.enqueue_unique(new_message(queue), key, TTL) == delayed.id
        assert broker.reserve([queue], 10, 0) == []  # delayed, and nothing else went in
        other_key = new_key()
        retried = new_message(queue)
        unique.enqueue_unique(retried, other_key, TTL)
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.nack(delivery, delay=3600)  # a retry: the job is delayed, still holding it
        assert unique.enqueue_unique(new_message(queue), other_key, TTL) == retried.id

    def test_the_lock_holds_once_a_delayed_message_falls_due(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        soon = new_message(queue, due=self.now(broker) + 1.0)
        unique.enqueue_unique(soon, key, TTL)
        self.advance(broker, 1.5)
        broker.move_due([queue])  # delayed -> waiting: still the holder
        assert unique.enqueue_unique(new_message(queue), key, TTL) == soon.id
        assert self.reserve_all(broker, queue) == [soon.id]

    def test_the_lock_frees_when_its_message_is_dead_lettered(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        first = new_message(queue)
        unique.enqueue_unique(first, key, TTL)
        [delivery] = self.reserve_exactly(broker, queue, 1)
        broker.dead_letter(delivery, "failed")
        after = new_message(queue)
        assert unique.enqueue_unique(after, key, TTL) == after.id

    def test_the_lock_frees_when_its_queue_is_purged(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        admin = self.require_admin(broker)
        queue, key, delayed_key = new_queue(), new_key(), new_key()
        unique.enqueue_unique(new_message(queue), key, TTL)
        unique.enqueue_unique(new_message(queue, due=self.now(broker) + 3600), delayed_key, TTL)
        assert admin.purge(queue) == 2
        after, delayed_after = new_message(queue), new_message(queue)
        assert unique.enqueue_unique(after, key, TTL) == after.id
        assert unique.enqueue_unique(delayed_after, delayed_key, TTL) == delayed_after.id

    def test_a_release_keeps_the_lock_then_frees_it(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key, now_key = new_queue(), new_key(), new_key()
        first, second = new_message(queue), new_message(queue)
        unique.enqueue_unique(first, key, TTL)
        unique.enqueue_unique(second, now_key, TTL)
        deliveries = self.reserve_exactly(broker, queue, 2)
        broker.ack(deliveries)
        unique.release_unique(queue, key, first.id, keep_for=1.0)
        unique.release_unique(queue, now_key, second.id)  # 0: free now
        assert unique.enqueue_unique(new_message(queue), key, TTL) == first.id  # kept
        now_after = new_message(queue)
        assert unique.enqueue_unique(now_after, now_key, TTL) == now_after.id
        self.advance(broker, 1.5)
        after = new_message(queue)
        assert unique.enqueue_unique(after, key, TTL) == after.id
        assert sorted(self.reserve_all(broker, queue)) == sorted([now_after.id, after.id])

    def test_a_release_by_another_job_changes_nothing(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        first = new_message(queue)
        unique.enqueue_unique(first, key, TTL)
        [delivery] = self.reserve_exactly(broker, queue, 1)
        unique.release_unique(queue, key, "another-job", keep_for=3600)
        unique.release_unique(queue, new_key(), first.id, keep_for=3600)  # no such lock
        unique.release_unique(new_queue(), key, first.id, keep_for=3600)  # another queue
        assert unique.enqueue_unique(new_message(queue), key, TTL) == first.id
        broker.ack([delivery])
        after = new_message(queue)
        assert unique.enqueue_unique(after, key, TTL) == after.id  # nothing was kept

    def test_locks_are_per_queue_and_key(self, broker: Broker, unique: UniqueLocks) -> None:
        queue, other_queue, key = new_queue(), new_queue(), new_key()
        messages = [new_message(queue), new_message(other_queue), new_message(queue)]
        assert unique.enqueue_unique(messages[0], key, TTL) == messages[0].id
        assert unique.enqueue_unique(messages[1], key, TTL) == messages[1].id
        assert unique.enqueue_unique(messages[2], new_key(), TTL) == messages[2].id
        assert sorted(self.reserve_all(broker, queue)) == sorted([messages[0].id,
                                                                  messages[2].id])

    def test_concurrent_enqueues_take_the_lock_once(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        messages = [new_message(queue) for _ in range(8)]
        start = threading.Barrier(len(messages))
        holders: list[str] = []
        errors: list[BaseException] = []

        def produce(index: int) -> None:
            try:
                start.wait(timeout=GRACE)
                holders.append(unique.enqueue_unique(messages[index], key, TTL))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(len(messages))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert len(holders) == 8 and len(set(holders)) == 1
        assert holders[0] in {m.id for m in messages}
        assert self.reserve_all(broker, queue) == [holders[0]]

    def test_a_lock_record_ends_after_its_ttl(
        self, broker: Broker, unique: UniqueLocks
    ) -> None:
        queue, key = new_queue(), new_key()
        first = new_message(queue)
        unique.enqueue_unique(first, key, 1.0)
        assert unique.enqueue_unique(new_message(queue), key, 1.0) == first.id
        self.advance(broker, 1.5)  # the first job still waits: only the record's bound ended
        after = new_message(queue)
        assert unique.enqueue_unique(after, key, TTL) == after.id
        assert sorted(self.reserve_all(broker, queue)) == sorted([first.id, after.id])

    def test_durable_unique_enqueue(self, broker: Broker, unique: UniqueLocks) -> None:
        queue = new_queue()
        message = new_message(queue)
        if self.durable_enqueue_refused:
            with pytest.raises(BrokerError):
                unique.enqueue_unique(message, new_key(), TTL, durable=True)
        else:
            assert unique.enqueue_unique(message, new_key(), TTL, durable=True) == message.id
        # Refused or not, the message is on the broker (the wait is for a replica only).
        assert self.reserve_all(broker, queue) == [message.id]
