"""Job handles: what ``delay()`` returns and ``app.job(id)`` rebuilds."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ._current import RunningJob, running_job
from ._types import JobStatus

if TYPE_CHECKING:
    from ._cancelling import CancelOutcome
    from ._producer import Producer

R = TypeVar("R")

logger = logging.getLogger("tinyq.worker")  # said on a worker, about its slots

FIND_INTERVAL = 0.1  # seconds between looks for a job of a handle whose queue is not known

# Taken for good by the first warning of a job waiting on another: acquiring it without
# blocking is an atomic "first time?", so two jobs starting to wait together log once.
waiting_warning_given = threading.Lock()


class JobHandle(Generic[R]):
    """A reference to an enqueued job: its id, its status and, once done, its result."""

    __slots__ = ("_producer", "id", "queue")

    def __init__(self, producer: Producer, id: str, queue: str | None = None) -> None:
        self._producer = producer
        self.id = id
        self.queue = queue  # None until known: app.job(id) looks it up on first use

    def __repr__(self) -> str:
        return f"<JobHandle {self.id}>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, JobHandle) and other.id == self.id
                and other._producer is self._producer)

    def __hash__(self) -> int:
        return hash(self.id)

    def status(self) -> JobStatus:
        """``"queued"``, ``"scheduled"``, ``"started"``, ``"succeeded"``, ``"failed"``,
        ``"cancelled"``, ``"expired"``, or
        ``"unknown"`` (no such job, its result expired, or it succeeded with
        ``store_result=False``: failures are always stored). A broker without the admin tier
        knows only finished jobs: the rest are ``"unknown"``."""
        queue = self._locate()
        return "unknown" if queue is None else self._producer.status(self.id, queue)

    def cancel(self, grace: float | None = None) -> CancelOutcome:
        """Cancel the job. Waiting (queued, delayed): removed, it never runs
        (``"cancelled"``). Running: asked to stop (``"cancelling"``): the worker learns it
        within about a second and sets ``current_job().cancelled``; with ``grace``, a sync
        job still running that many seconds later is interrupted. Finished already: its
        outcome stands (``"finished"``). ``"unknown"``: no such job. See docs/tasks.md."""
        return self._producer.cancel(self.id, self._locate(), grace)

    def _locate(self) -> str | None:
        if self.queue is None:
            self.queue = self._producer.find_queue(self.id)
        return self.queue

    def progress(self) -> Any:
        """The latest progress the job reported with ``current_job().set_progress(...)``
        (a number or a dict), or None before any (or once it expired with the result).
        Raises :class:`ConfigurationError` on a result backend that keeps no progress."""
        queue = self._locate()
        return None if queue is None else self._producer.progress(self.id, queue)

    def result(self, timeout: float | None = None) -> R:
        """Wait up to ``timeout`` seconds (forever when ``None``) and return the job's value.

        Raises :class:`JobFailed` when the job failed and :class:`TimeoutError` when it did not
        finish in time."""
        running = running_job()
        if running is not None:
            self._check_wait_inside(running, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        queue = self._locate()
        while queue is None:  # a handle from app.job(id) of a job not found yet
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} was not found in any known queue")
            time.sleep(FIND_INTERVAL)
            queue = self._locate()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        outcome = self._producer.outcome(self.id, remaining, queue)
        if outcome is None:
            raise TimeoutError(f"job {self.id} did not finish within {timeout} seconds")
        return cast(R, outcome.unwrap())

    async def aresult(self, timeout: float | None = None) -> R:
        """:meth:`result`, awaitable: the event loop runs on while it waits (see
        docs/asyncio.md)."""
        return cast(R, await self._producer.aio.aresult(self, timeout))

    async def astatus(self) -> JobStatus:
        """:meth:`status`, awaitable."""
        return await self._producer.aio.astatus(self)

    async def aprogress(self) -> Any:
        """:meth:`progress`, awaitable."""
        return await self._producer.aio.aprogress(self)

    async def acancel(self, grace: float | None = None) -> CancelOutcome:
        """:meth:`cancel`, awaitable: the same outcomes."""
        aio = self._producer.aio
        return await aio.acancel(self.id, await aio.locate(self), grace)

    def _check_wait_inside(self, running: RunningJob, timeout: float | None) -> None:
        """A job waiting for a result: for its own, an error at once; for another, without a
        timeout, a warning (once) that it can deadlock the worker."""
        if running.id == self.id:
            # RuntimeError, like threading's "cannot join current thread": a programming
            # error to fix in the task, not a failure of tinyq or of the broker.
            raise RuntimeError(
                f"job {self.id} cannot wait for its own result: it would wait for itself to "
                "finish (inside a task, return the value instead)")
        if timeout is None:
            warn_of_waiting_on_another_job(running.id, self.id)


def warn_of_waiting_on_another_job(waiting_id: str, awaited_id: str) -> None:
    """Log once per process: after that, the first warning has said it."""
    if not waiting_warning_given.acquire(blocking=False):
        return
    logger.warning(
        "Job %s waits for the result of job %s without a timeout: this can deadlock the worker "
        "when every slot holds a job waiting for one that needs a slot. Give result() a timeout "
        "(this silences the warning) or run those jobs on another queue and worker; see "
        "docs/tasks.md#waiting-for-other-jobs-inside-a-task", waiting_id, awaited_id)
