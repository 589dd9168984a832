"""The broker contract: the behaviour every Broker plugin must share, as a pytest test class.

A plugin runs it against its own broker by subclassing it (see ``docs/plugins.md``)::

    class TestMyBroker(BrokerContract):
        @pytest.fixture
        def broker(self):
            broker = MyBroker(url, visibility_timeout=0.5)  # fresh and empty
            yield broker
            broker.close()

Two kinds of time pass in these tests. Leases, due times and result TTLs follow the broker's
clock, moved by :meth:`BrokerContract.advance` (real sleeping by default; a broker on a fake
clock moves the clock) and read by :meth:`BrokerContract.now`. Blocking waits (the ``timeout``
of ``reserve`` and ``get``) are always real time. Every test uses its own queue names and job
ids, so a shared server does not leak state from one test into another.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from .._errors import ConfigurationError
from .._interfaces import Broker, ResultBackend
from .._types import Delivery, Message, Result

# Real-time bounds, generous on purpose: they tell "woke up" from "waited out the timeout" and
# "waited" from "returned at once", and must not flake on a loaded CI machine.
_ACT_AFTER = 0.2  # when a helper thread enqueues or stores while the test is blocked
_LONG_WAIT = 5.0  # a timeout that a wake-up must cut short...
_WOKE_WITHIN = 2.5  # ...returning before this
_SHORT_WAIT = 0.5  # a timeout that must run its course when nothing arrives
_AT_ONCE = 1.0  # a non-blocking call returns within this
_GRACE = 2.0  # timeout of a reserve that expects messages: returns at once when they are there


def _queue() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


def _message(queue: str, body: bytes | None = None, due: float | None = None) -> Message:
    job_id = uuid.uuid4().hex
    return Message(job_id, queue, f"body-{job_id}".encode() if body is None else body, due)


@contextlib.contextmanager
def _later(action: Callable[[], object], delay: float = _ACT_AFTER) -> Iterator[None]:
    """Run ``action`` in another thread ``delay`` real seconds from now. On leaving, wait for it
    and re-raise its error, so a failing helper fails the test instead of passing silently."""
    errors: list[BaseException] = []

    def run() -> None:
        time.sleep(delay)
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="contract-helper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=30)
    if errors:
        raise errors[0]


class BrokerContract:
    """Tests every broker must pass. Subclass it as ``TestXxx`` and provide a ``broker`` fixture
    returning a fresh, empty broker with a short ``visibility_timeout`` (about 0.5 s on real
    time); override :meth:`advance` and :meth:`now` when the broker runs on a fake clock.

    The name does not start with ``Test``, so pytest runs it only through subclasses.
    """

    def advance(self, broker: Broker, seconds: float) -> None:
        """Let ``seconds`` pass for leases, due times and TTLs. Sleeps unless overridden."""
        time.sleep(seconds)

    def now(self, broker: Broker) -> float:
        """The broker's current Unix time, the scale of ``Message.due``."""
        return time.time()

    @pytest.fixture
    def results(self, broker: Broker) -> ResultBackend:
        try:
            return broker.result_backend()
        except ConfigurationError:
            pytest.skip(f"{type(broker).__name__} has no result backend")

    def _expire_leases(self, broker: Broker) -> None:
        """Let every lease taken so far expire, with a margin for brokers on real time."""
        self.advance(broker, broker.visibility_timeout * 1.25)

    def _reserve(self, broker: Broker, queue: str, count: int) -> list[Delivery]:
        deliveries = broker.reserve([queue], count, _GRACE)
        assert len(deliveries) == count, f"expected {count} deliveries, got {deliveries}"
        return deliveries

    # -- enqueue, reserve, ack ---------------------------------------------------------------

    def test_enqueue_reserve_ack_round_trip(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue, b"\x00 opaque \xff bytes")
        broker.enqueue([message])

        [delivery] = self._reserve(broker, queue, 1)
        assert (delivery.id, delivery.queue) == (message.id, queue)
        assert delivery.message.body == message.body
        assert delivery.attempts == 1
        assert broker.reserve([queue], 1, 0) == []  # leased: nobody else gets it

        broker.ack([delivery])
        # An acked message is gone for good, even once its old lease would have run out.
        self._expire_leases(broker)
        assert broker.recover([queue]) == 0
        assert broker.reserve([queue], 1, 0) == []
        assert broker.size(queue) == 0

    def test_reserve_respects_count(self, broker: Broker) -> None:
        queue = _queue()
        broker.enqueue([_message(queue) for _ in range(5)])
        first = self._reserve(broker, queue, 2)
        rest = broker.reserve([queue], 10, _GRACE)
        assert len(rest) == 3
        assert len({d.id for d in first + rest}) == 5
        broker.ack(first + rest)  # several at once
        assert broker.size(queue) == 0

    def test_enqueueing_a_waiting_job_id_again_adds_nothing(self, broker: Broker) -> None:
        # A producer retrying after a lost reply must not create a second copy.
        queue = _queue()
        message = _message(queue)
        later = _message(queue, due=self.now(broker) + 100)
        broker.enqueue([message, later])
        broker.enqueue([message, later])
        assert broker.size(queue) == 2
        [delivery] = self._reserve(broker, queue, 1)
        broker.enqueue([message])  # leased: still the same job
        assert broker.reserve([queue], 1, 0) == []
        broker.ack([delivery])
        broker.enqueue([message])  # done: a new run of that id is a new job
        assert [d.id for d in self._reserve(broker, queue, 1)] == [message.id]

    def test_enqueue_many_in_one_call(self, broker: Broker) -> None:
        queue = _queue()
        broker.enqueue([])  # nothing to add is not an error
        messages = [_message(queue) for _ in range(50)]
        broker.enqueue(messages)
        assert broker.size(queue) == 50
        deliveries = broker.reserve([queue], 100, _GRACE)
        assert {d.id: d.message.body for d in deliveries} == {m.id: m.body for m in messages}

    def test_concurrent_reservers_never_share_a_message(self, broker: Broker) -> None:
        queue = _queue()
        messages = [_message(queue) for _ in range(120)]
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
                stack.enter_context(_later(consume, delay=0))
        assert sorted(seen) == sorted(m.id for m in messages)  # each exactly once

    # -- blocking reserve ----------------------------------------------------------------------

    def test_reserve_without_timeout_returns_at_once(self, broker: Broker) -> None:
        started = time.monotonic()
        assert broker.reserve([_queue()], 1, 0) == []
        assert time.monotonic() - started < _AT_ONCE

    def test_blocking_reserve_waits_for_its_timeout(self, broker: Broker) -> None:
        started = time.monotonic()
        assert broker.reserve([_queue()], 1, _SHORT_WAIT) == []
        elapsed = time.monotonic() - started
        assert _SHORT_WAIT * 0.8 <= elapsed < _SHORT_WAIT + _WOKE_WITHIN

    def test_blocking_reserve_wakes_on_enqueue(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        started = time.monotonic()
        with _later(lambda: broker.enqueue([message])):
            deliveries = broker.reserve([queue], 1, _LONG_WAIT)
        assert [d.id for d in deliveries] == [message.id]
        assert time.monotonic() - started < _WOKE_WITHIN

    # -- leases --------------------------------------------------------------------------------

    def test_expired_lease_is_redelivered(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        broker.enqueue([message])
        self._reserve(broker, queue, 1)
        assert broker.recover([queue]) == 0  # not expired yet

        self._expire_leases(broker)
        assert broker.recover([queue]) == 1
        assert broker.status(message.id, queue) == "queued"
        [again] = self._reserve(broker, queue, 1)
        assert (again.id, again.message.body, again.attempts) == (message.id, message.body, 2)

    def test_renewed_lease_is_not_redelivered(self, broker: Broker) -> None:
        queue = _queue()
        broker.enqueue([_message(queue)])
        delivery = self._reserve(broker, queue, 1)
        # Renewed after 60% of the lease and checked after 120%: expired unless renew worked.
        self.advance(broker, broker.visibility_timeout * 0.6)
        broker.renew(delivery)
        self.advance(broker, broker.visibility_timeout * 0.6)
        assert broker.recover([queue]) == 0
        assert broker.reserve([queue], 1, 0) == []
        assert broker.status(delivery[0].id, queue) == "started"

    # -- delayed messages ----------------------------------------------------------------------

    def test_delayed_message_waits_until_due(self, broker: Broker) -> None:
        queue = _queue()
        assert broker.move_due([queue]) is None  # a fresh queue has nothing delayed
        delay = broker.visibility_timeout
        soon = _message(queue, due=self.now(broker) + delay)
        later = _message(queue, due=self.now(broker) + 100 * delay)
        broker.enqueue([later, soon])
        assert broker.status(soon.id, queue) == "scheduled"
        assert broker.size(queue) == 2

        due_in = broker.move_due([queue])
        assert due_in is not None and 0 < due_in <= delay + 0.05  # the nearer one counts
        self.advance(broker, delay * 0.5)
        assert broker.move_due([queue]) is not None
        assert broker.reserve([queue], 2, 0) == []  # not before it is due

        self.advance(broker, delay * 0.75)
        due_in = broker.move_due([queue])
        assert due_in is not None and delay * 90 < due_in <= delay * 100  # now the later one
        states = (broker.status(soon.id, queue), broker.status(later.id, queue))
        assert states == ("queued", "scheduled")
        [delivery] = broker.reserve([queue], 2, _GRACE)
        assert (delivery.id, delivery.message.body, delivery.attempts) == (soon.id, soon.body, 1)

        assert broker.purge(queue) == 1  # the later one
        assert broker.move_due([queue]) is None

    # -- nack ----------------------------------------------------------------------------------

    def test_nack_puts_the_message_back(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        broker.enqueue([message])
        [delivery] = self._reserve(broker, queue, 1)
        broker.nack(delivery)
        assert broker.status(message.id, queue) == "queued"
        assert broker.size(queue) == 1
        [again] = self._reserve(broker, queue, 1)
        assert (again.id, again.message.body, again.attempts) == (message.id, message.body, 1)

    def test_nack_with_delay_delays_the_message(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        broker.enqueue([message])
        [delivery] = self._reserve(broker, queue, 1)
        delay = broker.visibility_timeout
        broker.nack(delivery, delay=delay)
        assert broker.status(message.id, queue) == "scheduled"
        broker.move_due([queue])
        assert broker.reserve([queue], 1, 0) == []

        self.advance(broker, delay * 1.25)
        assert broker.move_due([queue]) is None
        [again] = self._reserve(broker, queue, 1)
        assert (again.id, again.attempts) == (message.id, 1)

    def test_nack_with_a_body_replaces_it(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        broker.enqueue([message])
        for body in (b"retry 1", b""):  # empty is a body too, not "keep the old one"
            [delivery] = self._reserve(broker, queue, 1)
            broker.nack(delivery, body=body)
            [delivery] = self._reserve(broker, queue, 1)
            assert (delivery.id, delivery.message.body) == (message.id, body)
            broker.nack(delivery)  # without a body: keep the current one
            [delivery] = self._reserve(broker, queue, 1)
            assert delivery.message.body == body
            broker.nack(delivery)

    # -- dead letters --------------------------------------------------------------------------

    def test_dead_letter_records_why_and_is_not_redelivered(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        broker.enqueue([message])
        self._reserve(broker, queue, 1)  # attempt 1, given up by "crashing"
        self._expire_leases(broker)
        assert broker.recover([queue]) == 1
        [delivery] = self._reserve(broker, queue, 1)
        broker.dead_letter(delivery, "max retries", "ValueError: boom")

        [letter] = broker.dead_letters(queue)
        assert (letter.message.id, letter.message.body) == (message.id, message.body)
        assert (letter.reason, letter.error) == ("max retries", "ValueError: boom")
        assert letter.attempts == 2
        assert abs(letter.failed_at - self.now(broker)) < 60
        assert broker.status(message.id, queue) == "unknown"
        assert broker.size(queue) == 0
        # Its lease is gone with it: expiry does not bring it back.
        self._expire_leases(broker)
        assert broker.recover([queue]) == 0
        assert broker.reserve([queue], 1, 0) == []
        assert broker.dead_letters(_queue()) == []  # per queue

    def test_requeue_dead_letters(self, broker: Broker) -> None:
        queue = _queue()
        messages = [_message(queue) for _ in range(3)]
        broker.enqueue(messages)
        for delivery in sorted(self._reserve(broker, queue, 3), key=lambda d: d.id):
            broker.dead_letter(delivery, f"bad {delivery.id}")
        order = sorted(m.id for m in messages)
        assert [d.message.id for d in broker.dead_letters(queue)] == order  # oldest first
        assert [d.message.id for d in broker.dead_letters(queue, limit=1)] == order[:1]

        assert broker.requeue_dead_letters(queue, [order[1]]) == 1
        assert [d.message.id for d in broker.dead_letters(queue)] == [order[0], order[2]]
        assert broker.status(order[1], queue) == "queued"
        [again] = self._reserve(broker, queue, 1)
        assert (again.id, again.attempts) == (order[1], 1)

        assert broker.requeue_dead_letters(queue) == 2
        assert broker.dead_letters(queue) == []
        assert {d.id for d in self._reserve(broker, queue, 2)} == {order[0], order[2]}

    def test_purge_dead_letters(self, broker: Broker) -> None:
        queue = _queue()
        broker.enqueue([_message(queue), _message(queue)])
        for delivery in self._reserve(broker, queue, 2):
            broker.dead_letter(delivery, "bad")
        assert broker.purge_dead_letters(queue) == 2
        assert broker.dead_letters(queue) == []
        assert broker.requeue_dead_letters(queue) == 0
        assert broker.reserve([queue], 1, 0) == []

    # -- queues --------------------------------------------------------------------------------

    def test_earlier_queues_come_first(self, broker: Broker) -> None:
        high, low = _queue(), _queue()
        broker.enqueue([_message(low) for _ in range(3)] + [_message(high)])
        [first] = broker.reserve([high, low], 1, _GRACE)
        assert first.queue == high

        broker.enqueue([_message(high)])
        deliveries = broker.reserve([high, low], 3, _GRACE)
        # High has one message; the rest of the batch is filled up from low.
        assert sorted(d.queue == high for d in deliveries) == [False, False, True]
        assert (broker.size(high), broker.size(low)) == (0, 1)

    def test_size_counts_waiting_not_leased(self, broker: Broker) -> None:
        queue, other = _queue(), _queue()
        assert broker.size(queue) == 0
        broker.enqueue([_message(queue), _message(queue), _message(other)])
        broker.enqueue([_message(queue, due=self.now(broker) + 3600)])
        assert broker.size(queue) == 3
        self._reserve(broker, queue, 1)
        assert (broker.size(queue), broker.size(other)) == (2, 1)

    def test_purge_removes_waiting_messages(self, broker: Broker) -> None:
        queue, other = _queue(), _queue()
        leased, waiting = _message(queue), _message(queue)
        delayed = _message(queue, due=self.now(broker) + 3600)
        broker.enqueue([leased])
        [delivery] = self._reserve(broker, queue, 1)
        broker.enqueue([waiting, delayed, _message(other)])

        assert broker.purge(queue) == 2  # waiting and delayed, not the leased one
        assert (broker.size(queue), broker.size(other)) == (0, 1)
        assert broker.status(waiting.id, queue) == "unknown"
        assert broker.status(delayed.id, queue) == "unknown"
        assert broker.status(leased.id, queue) == "started"
        assert broker.reserve([queue], 1, 0) == []
        assert broker.purge(queue) == 0
        broker.ack([delivery])

    def test_status_follows_the_message(self, broker: Broker) -> None:
        queue = _queue()
        message = _message(queue)
        assert broker.status(message.id, queue) == "unknown"
        broker.enqueue([message])
        assert broker.status(message.id, queue) == "queued"
        assert broker.status(message.id, _queue()) == "unknown"  # per queue
        [delivery] = self._reserve(broker, queue, 1)
        assert broker.status(message.id, queue) == "started"
        broker.ack([delivery])
        assert broker.status(message.id, queue) == "unknown"

    # -- results -------------------------------------------------------------------------------

    def test_results_round_trip(self, results: ResultBackend) -> None:
        queue = _queue()
        stored = [Result(uuid.uuid4().hex, b"\x00 result \xff"), Result(uuid.uuid4().hex, b"")]
        stored.append(Result(uuid.uuid4().hex, b"in a queue", queue))
        results.store(stored, ttl=60)
        assert [results.get(r.job_id, queue=r.queue) for r in stored] == stored

    def test_missing_result_is_none_at_once(self, results: ResultBackend) -> None:
        started = time.monotonic()
        assert results.get(uuid.uuid4().hex, timeout=0) is None
        assert time.monotonic() - started < _AT_ONCE

    def test_result_expires_after_its_ttl(self, broker: Broker, results: ResultBackend) -> None:
        result = Result(uuid.uuid4().hex, b"short-lived")
        ttl = broker.visibility_timeout  # short on every broker the suite runs against
        results.store([result], ttl=ttl)
        assert results.get(result.job_id) == result
        self.advance(broker, ttl * 1.25)
        assert results.get(result.job_id) is None

    def test_blocking_get_wakes_on_store(self, results: ResultBackend) -> None:
        result = Result(uuid.uuid4().hex, b"late")
        started = time.monotonic()
        with _later(lambda: results.store([result], ttl=60)):
            got = results.get(result.job_id, timeout=_LONG_WAIT)
        assert got == result
        assert time.monotonic() - started < _WOKE_WITHIN

    def test_blocking_get_times_out(self, results: ResultBackend) -> None:
        started = time.monotonic()
        assert results.get(uuid.uuid4().hex, timeout=_SHORT_WAIT) is None
        elapsed = time.monotonic() - started
        assert _SHORT_WAIT * 0.8 <= elapsed < _SHORT_WAIT + _WOKE_WITHIN
