"""Job handles: what ``delay()`` returns and ``app.job(id)`` rebuilds."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from ._types import JobStatus

if TYPE_CHECKING:
    from ._producer import Producer

R = TypeVar("R")

FIND_INTERVAL = 0.1  # seconds between looks for a job of a handle whose queue is not known


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
        """``"queued"``, ``"scheduled"``, ``"started"``, ``"succeeded"``, ``"failed"``, or
        ``"unknown"`` (no such job, its result expired, or it succeeded with
        ``store_result=False``: failures are always stored). A broker without the admin tier
        knows only finished jobs: the rest are ``"unknown"``."""
        queue = self._locate()
        return "unknown" if queue is None else self._producer.status(self.id, queue)

    def _locate(self) -> str | None:
        if self.queue is None:
            self.queue = self._producer.find_queue(self.id)
        return self.queue

    def result(self, timeout: float | None = None) -> R:
        """Wait up to ``timeout`` seconds (forever when ``None``) and return the job's value.

        Raises :class:`JobFailed` when the job failed and :class:`TimeoutError` when it did not
        finish in time."""
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
