"""The limits tier (:class:`JobLimits`): rate limits booked as slots in time, concurrency
limits as leased slots. Every test takes the ``limits`` fixture, which skips them for a
broker without the tier. Times are on the broker's clock (``advance`` moves a fake one)."""

from __future__ import annotations

import uuid

import pytest

from .._interfaces import Broker
from .._limit_interfaces import JobLimits
from ._support import ContractBase, new_message, new_queue

SLACK = 0.25  # seconds a real broker's clock may move between two calls of one test


def new_key() -> str:
    return f"limit-key-{uuid.uuid4().hex[:12]}"


class LimitsContract(ContractBase):
    @pytest.fixture
    def limits(self, broker: Broker) -> JobLimits:
        """The broker as its limits tier; those tests are skipped without it."""
        if not isinstance(broker, JobLimits):
            pytest.skip(f"{type(broker).__name__} is not a JobLimits: tier not offered")
        return broker

    def test_rate_slots_are_handed_out_one_interval_apart_in_order(
        self, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        waits = [limits.book_rate(queue, key, 10.0, 1, f"job-{i}") for i in range(4)]
        assert waits[0] == pytest.approx(0.0, abs=SLACK)
        for n, wait in enumerate(waits):
            assert wait == pytest.approx(10.0 * n, abs=SLACK)

    def test_a_burst_of_slots_is_free_at_once_then_one_per_interval(
        self, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        waits = [limits.book_rate(queue, key, 10.0, 3, f"job-{i}") for i in range(5)]
        assert waits[:3] == pytest.approx([0.0, 0.0, 0.0], abs=SLACK)
        assert waits[3:] == pytest.approx([10.0, 20.0], abs=SLACK)

    def test_a_key_busy_with_bookings_does_not_delay_another_key(
        self, limits: JobLimits
    ) -> None:
        queue, busy, other = new_queue(), new_key(), new_key()
        for i in range(20):
            limits.book_rate(queue, busy, 10.0, 1, f"busy-{i}")
        assert limits.book_rate(queue, other, 10.0, 1, "first") == pytest.approx(0, abs=SLACK)
        assert limits.book_rate(new_queue(), busy, 10.0, 1, "x") == pytest.approx(0, abs=SLACK)

    def test_a_booking_asked_again_returns_its_slot_without_booking_another(
        self, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        limits.book_rate(queue, key, 10.0, 1, "first")
        second = limits.book_rate(queue, key, 10.0, 1, "second")
        assert limits.book_rate(queue, key, 10.0, 1, "second") == pytest.approx(second,
                                                                                  abs=SLACK)
        assert limits.book_rate(queue, key, 10.0, 1, "third") == pytest.approx(20.0, abs=SLACK)

    def test_after_a_quiet_spell_the_next_slot_is_now(
        self, broker: Broker, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        limits.book_rate(queue, key, 0.5, 1, "a")
        limits.book_rate(queue, key, 0.5, 1, "b")
        self.advance(broker, 1.2)
        assert limits.book_rate(queue, key, 0.5, 1, "c") == pytest.approx(0.0, abs=0.05)

    def test_slots_are_taken_up_to_the_limit_and_freed_by_release(
        self, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        assert [limits.acquire_slot(queue, key, 2, h, 60) for h in ("a", "b", "c")] == [
            True, True, False]
        assert limits.acquire_slot(queue, key, 2, "a", 60)  # a holder renews its own
        assert limits.acquire_slot(new_queue(), key, 2, "c", 60)  # another queue's limit
        assert limits.acquire_slot(queue, new_key(), 2, "c", 60)  # another key's limit
        limits.release_slot(queue, key, "a")
        limits.release_slot(queue, key, "a")  # twice: nothing more
        assert limits.acquire_slot(queue, key, 2, "c", 60)
        assert not limits.acquire_slot(queue, key, 2, "d", 60)

    def test_a_slot_whose_lease_expired_is_free(
        self, broker: Broker, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        assert limits.acquire_slot(queue, key, 1, "dead", 0.5)
        assert not limits.acquire_slot(queue, key, 1, "alive", 0.5)
        self.advance(broker, 0.8)
        assert limits.acquire_slot(queue, key, 1, "alive", 60)
        assert not limits.acquire_slot(queue, key, 1, "dead", 60)

    def test_a_renewed_lease_does_not_expire(self, broker: Broker, limits: JobLimits) -> None:
        queue, key = new_queue(), new_key()
        assert limits.acquire_slot(queue, key, 1, "a", 1.0)
        self.advance(broker, 0.6)
        assert limits.acquire_slot(queue, key, 1, "a", 1.0)
        self.advance(broker, 0.6)
        assert not limits.acquire_slot(queue, key, 1, "b", 1.0)

    def test_slots_of_several_keys_are_released_at_once(self, limits: JobLimits) -> None:
        queue, one, two = new_queue(), new_key(), new_key()
        assert limits.acquire_slot(queue, one, 1, "a", 60)
        assert limits.acquire_slot(queue, two, 1, "b", 60)
        limits.release_slots([(queue, one, "a"), (queue, two, "b"), (queue, two, "gone")])
        assert limits.acquire_slot(queue, one, 1, "c", 60)
        assert limits.acquire_slot(queue, two, 1, "d", 60)

    def test_bookings_of_one_batch_are_made_in_order_and_can_be_asked_again(
        self, limits: JobLimits
    ) -> None:
        queue, key, other = new_queue(), new_key(), new_key()
        batch = [(queue, key, 10.0, 1, "a"), (queue, other, 10.0, 1, "x"),
                 (queue, key, 10.0, 1, "b"), (queue, key, 10.0, 1, "c")]
        waits = limits.book_rates(batch)
        assert waits == pytest.approx([0.0, 0.0, 10.0, 20.0], abs=SLACK)
        assert limits.book_rates(batch) == pytest.approx(waits, abs=SLACK)  # a re-sent call
        assert limits.book_rates([]) == []
        assert limits.book_rate(queue, key, 10.0, 1, "d") == pytest.approx(30.0, abs=SLACK)

    def test_slots_asked_in_one_batch_count_in_order_and_renew(
        self, limits: JobLimits
    ) -> None:
        queue, key, other = new_queue(), new_key(), new_key()
        asked = [(queue, key, 2, h, 60.0) for h in ("a", "b", "c")]
        assert limits.acquire_slots([*asked, (queue, other, 1, "d", 60.0)]) == [
            True, True, False, True]
        assert limits.acquire_slots(asked[:2]) == [True, True]  # their holders renew them
        assert limits.acquire_slots([]) == []
        assert not limits.acquire_slot(queue, key, 2, "c", 60)

    def _waiting_job(self, broker: Broker, limits: JobLimits, queue: str, key: str) -> str:
        """A delayed job (given back to wait) whose holder found no slot of ``key``."""
        message = new_message(queue, due=self.now(broker) + 1000)
        broker.enqueue([message])
        assert limits.acquire_slots([(queue, key, 1, message.id, 60.0)], wait=True) == [False]
        return message.id

    def test_a_freed_slot_wakes_the_first_waiter_whose_job_is_delayed(
        self, broker: Broker, limits: JobLimits
    ) -> None:
        if not limits.wakes_slot_waiters:
            pytest.skip(f"{type(limits).__name__} does not wake slot waiters")
        queue, key = new_queue(), new_key()
        assert limits.acquire_slot(queue, key, 1, "running", 60)
        gone = "give-back-on-its-way"  # a waiter whose job is not delayed (yet): passed over
        assert limits.acquire_slots([(queue, key, 1, gone, 60.0)], wait=True) == [False]
        first = self._waiting_job(broker, limits, queue, key)
        second = self._waiting_job(broker, limits, queue, key)
        # Asked again (a waiter fetched by its fallback), the first keeps its place.
        assert limits.acquire_slots([(queue, key, 1, first, 60.0)], wait=True) == [False]
        limits.release_slots([(queue, key, "running"), (queue, key, "running")])  # re-sent
        broker.move_due([queue])
        assert [d.id for d in broker.reserve([queue], 10, 0)] == [first]
        # Its holder takes the slot and frees it: the second waiter is next.
        assert limits.acquire_slots([(queue, key, 1, first, 60.0)], wait=True) == [True]
        limits.release_slot(queue, key, first)
        broker.move_due([queue])
        assert [d.id for d in broker.reserve([queue], 10, 0)] == [second]
        limits.release_slot(queue, key, "nobody")  # freed nothing: wakes nobody, no error

    def test_a_holder_asking_without_wait_is_no_waiter(
        self, broker: Broker, limits: JobLimits
    ) -> None:
        queue, key = new_queue(), new_key()
        assert limits.acquire_slot(queue, key, 1, "running", 60)
        message = new_message(queue, due=self.now(broker) + 1000)
        broker.enqueue([message])
        assert limits.acquire_slots([(queue, key, 1, message.id, 60.0)]) == [False]
        limits.release_slot(queue, key, "running")
        broker.move_due([queue])
        assert broker.reserve([queue], 10, 0) == []  # still delayed: nobody woke it
