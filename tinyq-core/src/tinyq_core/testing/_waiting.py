"""Required tier: calls that block (a reserve waiting for messages, the mover waiting for
delayed ones) and the broker's liveness check; real time throughout."""

from __future__ import annotations

import time

from .._interfaces import Broker
from ._support import (
    AT_ONCE,
    LONG_WAIT,
    SHORT_WAIT,
    WOKE_WITHIN,
    ContractBase,
    later,
    new_message,
    new_queue,
    wake_bound,
)


class WaitingContract(ContractBase):
    def test_reserve_without_timeout_returns_at_once(self, broker: Broker) -> None:
        started = time.monotonic()
        assert broker.reserve([new_queue()], 1, 0) == []
        assert time.monotonic() - started < AT_ONCE

    def test_blocking_reserve_waits_for_its_timeout(self, broker: Broker) -> None:
        started = time.monotonic()
        assert broker.reserve([new_queue()], 1, SHORT_WAIT) == []
        elapsed = time.monotonic() - started
        assert SHORT_WAIT * 0.8 <= elapsed < SHORT_WAIT + WOKE_WITHIN

    def test_blocking_reserve_wakes_on_enqueue(self, broker: Broker) -> None:
        self._reserve_wakes_when(broker, broker)

    def test_blocking_reserve_wakes_on_enqueue_by_another_broker(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        """Another process's enqueue wakes a blocked reserve, within ``poll_interval``."""
        self._reserve_wakes_when(broker, second_broker)

    def _reserve_wakes_when(self, broker: Broker, producer: Broker) -> None:
        queue = new_queue()
        message = new_message(queue)
        # Longer than the bound by two poll intervals, so a poll cannot pass for a wake-up.
        timeout = LONG_WAIT + 2 * (broker.poll_interval or 0.0)
        started = time.monotonic()
        with later(lambda: producer.enqueue([message])):
            deliveries = broker.reserve([queue], 1, timeout)
        assert [d.id for d in deliveries] == [message.id]
        assert time.monotonic() - started < wake_bound(broker)

    def test_poll_interval_is_none_or_a_positive_number(self, broker: Broker) -> None:
        interval = broker.poll_interval
        if interval is not None:
            assert isinstance(interval, (int, float)) and not isinstance(interval, bool)
            assert interval > 0, f"poll_interval must be None or more than 0, not {interval}"

    def test_wait_for_delayed_waits_at_most_its_timeout(self, broker: Broker) -> None:
        started = time.monotonic()
        waited = broker.wait_for_delayed([new_queue()], SHORT_WAIT)
        elapsed = time.monotonic() - started
        assert isinstance(waited, bool)
        if not waited:  # the default: the mover sleeps by itself
            assert elapsed < AT_ONCE, f"wait_for_delayed took {elapsed:.2f} s to say False"
        else:
            assert elapsed < SHORT_WAIT + WOKE_WITHIN

    def test_wait_for_delayed_wakes_for_a_sooner_message(self, broker: Broker) -> None:
        self._wait_for_delayed_wakes_when(broker, broker)

    def test_wait_for_delayed_wakes_for_another_brokers_message(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        self._wait_for_delayed_wakes_when(broker, second_broker)

    def _wait_for_delayed_wakes_when(self, broker: Broker, producer: Broker) -> None:
        """A mover sleeping until a delayed message is due returns early when one due sooner
        is enqueued (or, by default, does not wait at all)."""
        queue = new_queue()
        broker.enqueue([new_message(queue, due=self.now(broker) + 1000)])
        assert broker.move_due([queue]) is not None  # the mover knows of that one
        # Any wake-up that enqueue left behind is used up here: the next wait starts afresh.
        broker.wait_for_delayed([queue], SHORT_WAIT)

        sooner = new_message(queue, due=self.now(broker) + 100)
        started = time.monotonic()
        with later(lambda: producer.enqueue([sooner])):
            waited = broker.wait_for_delayed([queue], LONG_WAIT)
            elapsed = time.monotonic() - started
        _assert_woken(broker, waited, elapsed)

    def test_wake_delayed_waiters_ends_a_wait_for_delayed(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        """A stopping worker wakes its mover (from another thread, maybe through another
        connection): the wait ends now, not at its timeout."""
        queue = new_queue()
        broker.wait_for_delayed([queue], SHORT_WAIT)  # a wake-up left behind is used up
        started = time.monotonic()
        with later(lambda: second_broker.wake_delayed_waiters([queue, new_queue()])):
            waited = broker.wait_for_delayed([queue], LONG_WAIT)
            elapsed = time.monotonic() - started
        _assert_woken(broker, waited, elapsed)
        broker.wake_delayed_waiters([])  # nothing to wake: no error

    def test_ping_returns_on_a_reachable_broker(self, broker: Broker) -> None:
        started = time.monotonic()
        broker.ping()  # raises BrokerUnavailable when unreachable
        assert time.monotonic() - started < WOKE_WITHIN


def _assert_woken(broker: Broker, waited: bool, elapsed: float) -> None:
    """A ``wait_for_delayed`` that was to be woken returned early (or, by default, did not
    wait at all)."""
    if not waited:
        assert elapsed < AT_ONCE, f"wait_for_delayed took {elapsed:.2f} s to say False"
    else:
        assert elapsed < wake_bound(broker), f"not woken: returned after {elapsed:.2f} s"
