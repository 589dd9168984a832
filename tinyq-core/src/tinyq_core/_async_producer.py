"""The awaitable side of a producer: ``adelay``, ``aresult`` and the rest come here.

Jobs are built, checked, encoded and hooked exactly as for the blocking API
(:meth:`Producer.prepare`: CPU only, run on the loop); only the I/O differs. It goes through
one :class:`AsyncBrokerClient` per event loop: the broker's own (its async tier) or a
:class:`ThreadedAsyncClient`. Unique jobs and the search for an unknown job's queue are rare
and take several broker calls: they run the blocking code on a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._async_cancelling import acancel_job
from ._async_interfaces import AsyncBroker, AsyncBrokerClient, ThreadedAsyncClient
from ._codec import Outcome
from ._current import running_job
from ._errors import EnqueueError
from ._handle import FIND_INTERVAL, JobHandle
from ._interfaces import Broker
from ._progress import ProgressStore
from ._types import Job, JobStatus, Message
from ._unique import enqueue_unique

if TYPE_CHECKING:
    from ._cancelling import CancelOutcome
    from ._producer import Producer


class _LoopClients:
    """The clients of one event loop: to the broker, and for results (the same one unless
    the application has a result backend of its own, waited on through threads)."""

    def __init__(self, broker: Broker, broker_client: AsyncBrokerClient,
                 results: AsyncBrokerClient) -> None:
        self.broker, self.broker_client, self.results = broker, broker_client, results

    async def aclose(self) -> None:
        if self.results is not self.broker_client:
            await self.results.aclose()
        await self.broker_client.aclose()


class AsyncProducer:
    """Awaitable enqueue and result reads for one :class:`Producer`."""

    def __init__(self, producer: Producer) -> None:
        self._producer = self.producer = producer
        self._lock = threading.Lock()  # loops in several threads share this object
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary())
        self._closing: set[asyncio.Task[None]] = set()  # held until done (asyncio keeps none)

    def _loop_clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        backends = self._producer.backends
        broker = backends.broker
        with self._lock:
            clients = self._clients.get(loop)
            if clients is not None and clients.broker is broker:
                return clients
        # Made outside the lock: a broker's async_client() may be slow to build. Two tasks
        # of one loop cannot get here at once (no await in between).
        if isinstance(broker, AsyncBroker):
            client = broker.async_client()
            results = (client if backends.explicit_results is None
                       else ThreadedAsyncClient(broker, backends.results))
        else:
            client = results = ThreadedAsyncClient(broker, backends.results)
        made = _LoopClients(broker, client, results)
        with self._lock:
            # Loops that ended without aclose() (asyncio.run() per call): nothing can await
            # their clients any more; dropped, their connections go with the garbage.
            for ended in [other for other in self._clients if other.is_closed()]:
                del self._clients[ended]
            self._clients[loop] = made
        if clients is not None:  # of the broker before app.use_broker(): let it go
            self._closing.add(task := loop.create_task(clients.aclose()))
            task.add_done_callback(self._closing.discard)
        return made

    def broker_client(self) -> AsyncBrokerClient:
        """The running loop's client of the broker."""
        return self._loop_clients().broker_client

    async def aclose(self) -> None:
        """Close the running loop's clients (its connection pool); the next call makes new
        ones."""
        with self._lock:
            clients = self._clients.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose()

    # -- enqueue -------------------------------------------------------------------------------

    async def aenqueue(self, jobs: list[Job], durable: bool | None = None) -> list[JobHandle[Any]]:
        """:meth:`Producer.enqueue`, awaitable."""
        producer = self._producer
        durable = producer.durable_enqueue if durable is None else durable
        jobs, messages = producer.prepare(jobs)
        if any(job.unique_key is not None for job in jobs):
            # One atomic lock-and-enqueue per job, through the blocking tier.
            return await _with_aretry(enqueue_unique, producer, jobs, messages, durable)
        handles: list[JobHandle[Any]] = [JobHandle(producer, job.id, job.queue) for job in jobs]
        return await self._send(messages, durable, handles, jobs)

    async def _send(
        self, pending: list[Message], durable: bool, handles: list[JobHandle[Any]],
        jobs: list[Job],
    ) -> list[JobHandle[Any]]:
        """:meth:`Producer._send` on the loop's client; the error's ``aretry`` sends the
        rest again here, its ``retry`` through the blocking broker."""
        producer = self._producer
        hooks = producer.hooks
        trying = {m.id for m in pending} if hooks.after_enqueue or hooks.enqueue_failed \
            else set()
        try:
            await self._loop_clients().broker_client.aenqueue(pending, durable=durable)
        except EnqueueError as exc:
            raise producer.refusal(
                exc, pending, handles, jobs, trying,
                lambda: producer._send(pending, durable, handles, jobs),
                lambda: self._send(pending, durable, handles, jobs),
            ) from exc
        except BaseException as exc:
            if trying:
                producer.announce_enqueued([j for j in jobs if j.id in trying], (), exc)
            raise
        if trying:
            producer.announce_enqueued([j for j in jobs if j.id in trying], trying)
        pending.clear()
        return handles

    # -- results -------------------------------------------------------------------------------

    async def aoutcome(self, job_id: str, timeout: float | None, queue: str) -> Outcome | None:
        result = await self._loop_clients().results.aget(job_id, timeout, queue)
        return None if result is None else self._producer.codec.decode_result(result.body,
                                                                               job_id)

    async def astatus(self, handle: JobHandle[Any]) -> JobStatus:
        queue = await self.locate(handle)
        if queue is None:
            return "unknown"
        outcome = await self.aoutcome(handle.id, 0, queue)
        if outcome is not None:  # "cancelled" and "expired" too, as status() says
            return outcome.status()
        return await self._loop_clients().broker_client.astatus(handle.id, queue)

    async def aprogress(self, handle: JobHandle[Any]) -> Any:
        queue = await self.locate(handle)
        if queue is None:
            return None
        try:
            body = await self._loop_clients().results.aprogress(handle.id, queue)
        except NotImplementedError:
            # A client without the optional method, or a backend that keeps no progress:
            # the blocking read, on a thread, reads it or says which.
            return await asyncio.to_thread(self._producer.progress, handle.id, queue)
        backends = self._producer.backends
        return ProgressStore(self._producer.codec, backends.results, 0).decode(handle.id, body)

    async def acancel(self, job_id: str, queue: str | None, grace: float | None) -> CancelOutcome:
        return await acancel_job(self, job_id, queue, grace)

    async def aresult(self, handle: JobHandle[Any], timeout: float | None) -> Any:
        running = running_job()
        if running is not None:
            handle._check_wait_inside(running, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        queue = await self.locate(handle)
        while queue is None:  # a handle from app.job(id) of a job not found yet
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {handle.id} was not found in any known queue")
            await asyncio.sleep(FIND_INTERVAL)
            queue = await self.locate(handle)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        outcome = await self.aoutcome(handle.id, remaining, queue)
        if outcome is None:
            raise TimeoutError(f"job {handle.id} did not finish within {timeout} seconds")
        return outcome.unwrap()

    async def locate(self, handle: JobHandle[Any]) -> str | None:
        if handle.queue is None:
            # Several reads over the known queues (a scan on Redis): on a thread.
            handle.queue = await asyncio.to_thread(self._producer.find_queue, handle.id)
        return handle.queue


async def _with_aretry(call: Callable[..., list[JobHandle[Any]]],
                       *args: Any) -> list[JobHandle[Any]]:
    """``call(*args)`` on a thread; an EnqueueError it raises gets an ``aretry()`` that runs
    its blocking ``retry()`` on a thread the same way."""
    try:
        return await asyncio.to_thread(call, *args)
    except EnqueueError as exc:
        if exc._aretry is None:
            retry = exc.retry
            exc._aretry = lambda: _with_aretry(retry)
        raise
