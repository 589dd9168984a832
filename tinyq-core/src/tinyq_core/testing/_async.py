"""The async tier (:class:`AsyncBroker`): a client made on the running loop enqueues as
``enqueue`` does, waits for results without blocking the loop, reads statuses, survives a
cancelled wait, and, when it offers them, cancels and reads progress. Every test takes the
``tier`` fixture, which skips them for a broker without the tier; each runs its coroutine on
a fresh loop with ``asyncio.run``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .._async_interfaces import AsyncBroker, AsyncBrokerClient
from .._control_interfaces import CancelRequests
from .._interfaces import Broker, BrokerAdmin, ResultBackend
from .._types import Result
from ._support import (
    ACT_AFTER,
    AT_ONCE,
    LONG_WAIT,
    SHORT_WAIT,
    ContractBase,
    later,
    new_message,
    new_queue,
)

Body = Callable[[AsyncBrokerClient], Awaitable[Any]]


def on_a_loop(tier: AsyncBroker, body: Body) -> Any:
    """``body(client)`` with a client of a fresh loop, closed after it."""

    async def main() -> Any:
        client = tier.async_client()
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


class AsyncContract(ContractBase):
    @pytest.fixture
    def tier(self, broker: Broker) -> AsyncBroker:
        """The broker as its async tier; those tests are skipped without it."""
        if not isinstance(broker, AsyncBroker):
            pytest.skip(f"{type(broker).__name__} is not an AsyncBroker: tier not offered")
        return broker

    def test_aenqueue_delivers_like_enqueue(self, broker: Broker, tier: AsyncBroker) -> None:
        queue = new_queue()
        one, two, three = (new_message(queue) for _ in range(3))
        delayed = new_message(queue, due=self.now(broker) + 3600)

        async def body(client: AsyncBrokerClient) -> None:
            await client.aenqueue([one])
            await client.aenqueue([two, three, delayed])
            await client.aenqueue([one])  # still queued: skipped

        on_a_loop(tier, body)
        assert self.reserve_all(broker, queue) == [one.id, two.id, three.id]

    def test_aget_reads_waits_and_times_out(
        self, broker: Broker, tier: AsyncBroker, results: ResultBackend
    ) -> None:
        queue = new_queue()
        stored, awaited = new_message(queue), new_message(queue)
        results.store([Result(stored.id, b"now", queue)], 60)

        async def body(client: AsyncBrokerClient) -> list[Any]:
            got: list[Any] = [await client.aget(stored.id, 0, queue),
                              await client.aget("absent", 0, queue)]
            start = time.monotonic()
            got.append(await client.aget("absent", SHORT_WAIT, queue))
            got.append(time.monotonic() - start >= SHORT_WAIT * 0.9)
            with later(lambda: results.store([Result(awaited.id, b"later", queue)], 60)):
                start = time.monotonic()
                got.append(await client.aget(awaited.id, LONG_WAIT, queue))
                got.append(time.monotonic() - start < LONG_WAIT - ACT_AFTER)  # woken
            return got

        now, absent, timed_out, waited, later_one, woken = on_a_loop(tier, body)
        assert (now.body, absent, timed_out, waited) == (b"now", None, None, True)
        assert (later_one.body, woken) == (b"later", True)

    def test_a_cancelled_aget_leaves_the_client_usable(
        self, broker: Broker, tier: AsyncBroker, results: ResultBackend
    ) -> None:
        queue = new_queue()
        message = new_message(queue)

        async def body(client: AsyncBrokerClient) -> Result | None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.aget(message.id, LONG_WAIT, queue), 0.1)
            await client.aenqueue([message])
            results.store([Result(message.id, b"done", queue)], 60)
            return await client.aget(message.id, AT_ONCE, queue)

        result = on_a_loop(tier, body)
        assert result is not None and result.body == b"done"
        assert self.reserve_all(broker, queue) == [message.id]

    def test_astatus_is_the_admin_status(self, broker: Broker, tier: AsyncBroker) -> None:
        if not isinstance(broker, BrokerAdmin):
            pytest.skip(f"{type(broker).__name__} is not a BrokerAdmin")
        queue = new_queue()
        ready, delayed = new_message(queue), new_message(queue, due=self.now(broker) + 3600)

        async def body(client: AsyncBrokerClient) -> list[str]:
            before = await client.astatus(ready.id, queue)
            await client.aenqueue([ready, delayed])
            return [before, await client.astatus(ready.id, queue),
                    await client.astatus(delayed.id, queue)]

        assert on_a_loop(tier, body) == ["unknown", "queued", "scheduled"]

    def test_acancel_is_cancel(
        self, broker: Broker, tier: AsyncBroker, results: ResultBackend
    ) -> None:
        """Optional (skipped when the client raises NotImplementedError): the same one
        atomic step as :meth:`CancelRequests.cancel`."""
        if not isinstance(broker, CancelRequests):
            pytest.skip(f"{type(broker).__name__} is not a CancelRequests")
        queue = new_queue()
        waiting, leased = new_message(queue), new_message(queue)
        broker.enqueue([leased])
        assert self.reserve_all(broker, queue) == [leased.id]
        broker.enqueue([waiting])
        outcome = Result(waiting.id, b"cancelled", queue)

        async def body(client: AsyncBrokerClient) -> list[str]:
            try:
                return [await client.acancel(waiting.id, queue, grace=None, ttl=60,
                                             result=outcome, result_ttl=60),
                        await client.acancel(waiting.id, queue, grace=None, ttl=60),
                        await client.acancel(leased.id, queue, grace=2.5, ttl=60)]
            except NotImplementedError:
                pytest.skip("the client has no acancel (optional)")

        assert on_a_loop(tier, body) == ["removed", "absent", "flagged"]
        stored = results.get(waiting.id, 0, queue)
        assert stored is not None and stored.body == b"cancelled"
        assert broker.cancel_requests(queue, [leased.id, waiting.id]) == {leased.id: 2.5}
        assert broker.reserve([queue], 10, 0) == []  # the waiting one never runs

    def test_aprogress_is_progress(self, broker: Broker, tier: AsyncBroker,
                                   results: ResultBackend) -> None:
        """Optional (skipped when the client raises NotImplementedError)."""
        queue = new_queue()
        try:
            results.store_progress("reporting", queue, b'{"n":1}', 60)
        except NotImplementedError:
            pytest.skip(f"{type(results).__name__} keeps no progress")

        async def body(client: AsyncBrokerClient) -> list[bytes | None]:
            try:
                return [await client.aprogress("reporting", queue),
                        await client.aprogress("silent", queue)]
            except NotImplementedError:
                pytest.skip("the client has no aprogress (optional)")

        assert on_a_loop(tier, body) == [b'{"n":1}', None]
