"""A task's awaitable enqueue methods: ``adelay``, ``aapply_async``, ``amap``.

The jobs are the ones the blocking methods build (``Task._apply_job``, ``Task._map_jobs``);
only the send differs (``Producer.aio``, see _async_producer.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ._handle import JobHandle

if TYPE_CHECKING:
    from ._producer import Producer
    from ._types import Job

P = ParamSpec("P")
R = TypeVar("R")


class AwaitableEnqueue(Generic[P, R]):
    """The awaitable half of :class:`Task`'s enqueue API (docs/asyncio.md)."""

    if TYPE_CHECKING:  # provided by Task
        _producer: Producer

        def _apply_job(
            self, args: Iterable[Any], kwargs: Mapping[str, Any] | None, *,
            countdown: float | None, eta: datetime | float | None, queue: str | None,
            job_id: str | None, headers: Mapping[str, str] | None,
            expires: float | timedelta | datetime | None,
            unique_for: float | timedelta | None, unique_key: str | None,
        ) -> Job: ...

        def _map_jobs(
            self, arguments: Iterable[Any], job_ids: Sequence[str] | None
        ) -> list[Job]: ...

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """:meth:`~Task.delay`, awaitable: the event loop runs on during the enqueue."""
        return await self.aapply_async(args, kwargs)

    async def aapply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | float | None = None,
        queue: str | None = None,
        job_id: str | None = None,
        durable: bool | None = None,
        headers: Mapping[str, str] | None = None,
        expires: float | timedelta | datetime | None = None,
        unique_for: float | timedelta | None = None,
        unique_key: str | None = None,
    ) -> JobHandle[R]:
        """:meth:`~Task.apply_async`, awaitable, with the same options."""
        job = self._apply_job(args, kwargs, countdown=countdown, eta=eta, queue=queue,
                              job_id=job_id, headers=headers, expires=expires,
                              unique_for=unique_for, unique_key=unique_key)
        [handle] = await self._producer.aio.aenqueue([job], durable)
        return handle

    async def amap(
        self,
        arguments: Iterable[Any],
        *,
        durable: bool | None = None,
        job_ids: Sequence[str] | None = None,
    ) -> list[JobHandle[R]]:
        """:meth:`~Task.map`, awaitable: one broker operation for every job."""
        jobs = self._map_jobs(arguments, job_ids)
        return await self._producer.aio.aenqueue(jobs, durable) if jobs else []
