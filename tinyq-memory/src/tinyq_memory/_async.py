"""The memory broker's async tier: native, as everything is in this process. Enqueueing takes
the broker's lock for microseconds; a result wait sleeps on an asyncio event that the
result backend's store sets from whichever thread stored (no thread, no polling)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tinyq_core.plugin import (
    AsyncBroker,
    AsyncBrokerClient,
    CancelState,
    JobStatus,
    Message,
    Result,
)

if TYPE_CHECKING:
    from ._broker import MemoryBroker


class MemoryAsyncClient(AsyncBrokerClient):
    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    async def aenqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        self.broker.enqueue(messages, durable=durable)
        # Give the loop a turn, as a network round trip would: a loop of adelay() calls
        # then never starves the loop's other tasks.
        await asyncio.sleep(0)

    async def aget(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        results = self.broker.result_backend()  # asked here: only a result wait needs it
        result = results.get(job_id, 0, queue)
        if result is not None or (timeout is not None and timeout <= 0):
            return result
        loop = asyncio.get_running_loop()
        stored = asyncio.Event()

        def wake() -> None:  # in the storing thread
            try:
                loop.call_soon_threadsafe(stored.set)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                pass

        deadline = None if timeout is None else time.monotonic() + timeout
        results.listen(wake)
        try:
            while True:
                stored.clear()
                result = results.get(job_id, 0, queue)
                if result is not None:
                    return result
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(stored.wait(), remaining)
                except asyncio.TimeoutError:
                    pass  # look once more, then give up
        finally:
            results.unlisten(wake)

    async def astatus(self, job_id: str, queue: str = "default") -> JobStatus:
        return self.broker.status(job_id, queue)

    async def aprogress(self, job_id: str, queue: str = "default") -> bytes | None:
        return self.broker.result_backend().progress(job_id, queue)

    async def acancel(
        self, job_id: str, queue: str, *, grace: float | None, ttl: float,
        result: Result | None = None, result_ttl: float = 0.0,
    ) -> CancelState:
        # The broker's lock, held for microseconds: native, as the rest of this tier.
        return self.broker.cancel(job_id, queue, grace=grace, ttl=ttl, result=result,
                                  result_ttl=result_ttl)


class MemoryAsyncTier(AsyncBroker):
    """The memory broker's :class:`AsyncBroker` tier."""

    def async_client(self) -> MemoryAsyncClient:
        return MemoryAsyncClient(self)  # type: ignore[arg-type]  # mixed into MemoryBroker
