"""The optional async tier of a broker: what an awaitable producer needs, on an event loop.

A broker offers it by inheriting :class:`AsyncBroker` beside :class:`Broker` and returning an
:class:`AsyncBrokerClient` from ``async_client()``. The core asks once per event loop, on that
loop, and closes the client in ``await app.aclose()``: a client may hold connections bound to
its loop (redis.asyncio's pool). A broker without the tier is driven through
:class:`ThreadedAsyncClient`: its blocking methods run on a few threads of the client's own,
so the loop is never blocked, at the cost of a thread hop per call.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ._control_interfaces import CancelRequests, CancelState
from ._interfaces import Broker, BrokerAdmin, ResultBackend
from ._types import JobStatus, Message, Result

T = TypeVar("T")

THREADS = 8  # threads of a ThreadedAsyncClient: its concurrent blocking calls
WAIT_SLICE = 0.5  # seconds one threaded result wait holds a thread before it is given back


class AsyncBrokerClient(abc.ABC):
    """One event loop's way to a broker: enqueue, wait for a result, read a status; and,
    optionally, read a progress and cancel."""

    @abc.abstractmethod
    async def aenqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        """:meth:`Broker.enqueue`, awaitable (the same semantics and errors)."""

    @abc.abstractmethod
    async def aget(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        """:meth:`ResultBackend.get` of the broker's own result backend, awaitable: waiting
        must not poll where the sync backend blocks, and a cancelled wait must leave the
        client usable."""

    async def astatus(self, job_id: str, queue: str = "default") -> JobStatus:
        """:meth:`BrokerAdmin.status`, awaitable; ``"unknown"`` without the admin tier."""
        return "unknown"

    async def aprogress(self, job_id: str, queue: str = "default") -> bytes | None:
        """:meth:`ResultBackend.progress` of the broker's own result backend, awaitable.
        Optional: without it (NotImplementedError) the producer reads on a thread."""
        raise NotImplementedError

    async def acancel(
        self, job_id: str, queue: str, *, grace: float | None, ttl: float,
        result: Result | None = None, result_ttl: float = 0.0,
    ) -> CancelState:
        """:meth:`CancelRequests.cancel`, awaitable (the same one atomic step). Optional:
        without it (NotImplementedError) the producer cancels on a thread."""
        raise NotImplementedError

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release this loop's connections; called on the client's own loop."""


class AsyncBroker(abc.ABC):
    """The optional async tier: a broker that can talk to an event loop natively."""

    @abc.abstractmethod
    def async_client(self) -> AsyncBrokerClient:
        """A new client for the running event loop (called on it, once per loop). A broker
        that cannot serve this configuration natively may return a
        :class:`ThreadedAsyncClient` of itself."""


class ThreadedAsyncClient(AsyncBrokerClient):
    """Any broker and result backend, awaitable: each blocking call runs on one of
    ``THREADS`` threads of this client's own (a SQLite broker opens one connection per
    thread, so they are few and kept). A result wait is cut into ``WAIT_SLICE`` calls, so
    a cancelled wait frees its thread within a slice and waits take turns on the threads."""

    def __init__(self, broker: Broker, results: ResultBackend | None = None) -> None:
        self.broker = broker
        self.results = results if results is not None else broker.result_backend()
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="tinyq-async")

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call, *args)

    async def aenqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        if durable:
            await self._run(lambda: self.broker.enqueue(messages, durable=True))
        else:
            await self._run(self.broker.enqueue, messages)

    async def aget(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = WAIT_SLICE if deadline is None else min(
                WAIT_SLICE, max(0.0, deadline - time.monotonic()))
            result = await self._run(self.results.get, job_id, wait, queue)
            if result is not None or (deadline is not None and time.monotonic() >= deadline):
                return result

    async def astatus(self, job_id: str, queue: str = "default") -> JobStatus:
        broker = self.broker
        if not isinstance(broker, BrokerAdmin):
            return "unknown"
        return await self._run(broker.status, job_id, queue)

    async def aprogress(self, job_id: str, queue: str = "default") -> bytes | None:
        return await self._run(self.results.progress, job_id, queue)

    async def acancel(
        self, job_id: str, queue: str, *, grace: float | None, ttl: float,
        result: Result | None = None, result_ttl: float = 0.0,
    ) -> CancelState:
        broker = self.broker
        if not isinstance(broker, CancelRequests):
            raise NotImplementedError
        return await self._run(lambda: broker.cancel(job_id, queue, grace=grace, ttl=ttl,
                                                     result=result, result_ttl=result_ttl))

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` on this client's threads: for what the tier has no method for."""
        return await self._run(call, *args)

    async def aclose(self) -> None:
        # Joined from a thread of the loop's default executor: the loop keeps running while
        # the last slices end (each within WAIT_SLICE).
        await asyncio.to_thread(self._threads.shutdown, True, cancel_futures=True)
