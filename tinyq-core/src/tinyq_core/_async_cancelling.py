"""``await h.acancel()`` and ``await app.acancel(job_id)``: :func:`cancel_job`, awaitable.

The same checks and the same outcomes as the blocking cancel (_cancelling.py); the I/O goes
through the loop's client: the broker's own async tier (memory, Redis: the same atomic
cancel as the blocking broker's) or its threads. A client without ``acancel``, the search
for an unknown job's queue, and storing the outcome in an application's own result backend
(rare) run the blocking code on a thread."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._cancelling import (
    MIN_REQUEST_TTL,
    CancelOutcome,
    cancelled_result,
    cancelling_broker,
    finished,
)
from ._control_interfaces import CancelState

if TYPE_CHECKING:
    from ._async_producer import AsyncProducer


async def acancel_job(
    aio: AsyncProducer, job_id: str, queue: str | None, grace: float | None
) -> CancelOutcome:
    """Cancel job ``job_id`` of ``queue`` (None: looked for in the known queues)."""
    producer = aio.producer
    broker = cancelling_broker(producer, grace)
    if queue is None:
        queue = await asyncio.to_thread(producer.find_queue, job_id)
        if queue is None:
            return "unknown"
    if await aio.aoutcome(job_id, 0, queue) is not None:
        return finished(job_id)
    result = cancelled_result(producer, job_id, queue)
    own_results = producer.backends.explicit_results is None
    ttl = producer.result_ttl
    request_ttl, stored = max(ttl, MIN_REQUEST_TTL), result if own_results else None
    state: CancelState
    try:
        state = await aio.broker_client().acancel(job_id, queue, grace=grace, ttl=request_ttl,
                                                  result=stored, result_ttl=ttl)
    except NotImplementedError:  # a client without the optional method
        state = await asyncio.to_thread(lambda: broker.cancel(
            job_id, queue, grace=grace, ttl=request_ttl, result=stored, result_ttl=ttl))
    if state == "removed":
        if not own_results:
            await asyncio.to_thread(producer.backends.results.store, [result], ttl)
        return "cancelled"
    if state == "flagged":
        return "cancelling"
    # Neither waiting nor leased: it may have finished between the two looks.
    return finished(job_id) if await aio.aoutcome(job_id, 0, queue) is not None else "unknown"
