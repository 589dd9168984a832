"""The job the worker is running in this context: set by the worker's runner around a task's
call (a sync task's thread, or an async task and the tasks it starts), unset everywhere else.
``current_job()`` returns it to the task; ``JobHandle.result()`` reads it to refuse a job
waiting for itself."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import Cancelled

if TYPE_CHECKING:
    from ._types import Job

MAX_PROGRESS_SIZE = 64 * 1024  # bytes of a job's encoded progress


class CancelFlag(Protocol):
    """What the worker sets when a job's cancel request reaches it (its held job)."""

    cancelled: bool


class RunningJob:
    """The job running in this context, as ``current_job()`` returns it (read-only).

    * ``id``, ``task_name``, ``queue``: the job's.
    * ``attempt``: its delivery count, 1 unless a worker died running it before (a retry
      is a new delivery: it starts at 1 again; ``retries`` counts those).
    * ``headers``: the message headers its producer set (str to str).
    * ``enqueued_at``: the Unix time it was enqueued (None from an older producer).
    * ``cancelled``: whether the job was cancelled while it runs (see ``check_cancelled``).
    """

    # A view of the job the worker decoded, made once per job: cheap to build.
    __slots__ = ("_flag", "_job", "_store", "attempt")

    def __init__(
        self,
        job: Job,
        attempt: int = 1,
        store: Callable[[str, str, Any], None] | None = None,
        flag: CancelFlag | None = None,
    ) -> None:
        self._job, self.attempt, self._store, self._flag = job, attempt, store, flag

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (``h.cancel()``): the worker learns it within
        about a second. A long sync task checks it now and then and returns (or calls
        :meth:`check_cancelled`)."""
        return self._flag is not None and self._flag.cancelled

    def check_cancelled(self) -> None:
        """Raise :class:`~tinyq_core.Cancelled` if the job was cancelled; else nothing."""
        if self._flag is not None and self._flag.cancelled:
            raise Cancelled(f"job {self._job.id} was cancelled")

    def __repr__(self) -> str:
        return (f"<RunningJob {self._job.id} {self._job.task_name} queue={self._job.queue!r} "
                f"attempt={self.attempt}>")

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def task_name(self) -> str:
        return self._job.task_name

    @property
    def queue(self) -> str:
        return self._job.queue

    @property
    def retries(self) -> int:
        return self._job.retries

    @property
    def headers(self) -> Mapping[str, str]:
        return MappingProxyType(self._job.headers)

    @property
    def enqueued_at(self) -> float | None:
        return self._job.enqueued_at

    def set_progress(self, value: float | dict[str, Any]) -> None:
        """Say how far the job got: a number, or a small dict that JSON can encode (at most
        64 KiB encoded). A producer reads the latest with ``handle.progress()``; it is kept
        like the job's result (the application's ``result_ttl``)."""
        check_progress(value)
        if self._store is None:
            raise RuntimeError("this job has no progress store (made outside a worker)")
        self._store(self._job.id, self._job.queue, value)


def check_progress(value: Any) -> None:
    """A clear error for a progress value that is neither a finite number nor a dict."""
    if type(value) in (int, float):
        if not math.isfinite(value):
            raise ValueError(f"progress must be a finite number, not {value!r}")
    elif not isinstance(value, dict):
        raise TypeError("progress must be a number or a dict that JSON can encode, not "
                        f"{type(value).__name__}")


# A ContextVar rather than a thread-local: an async job's task copies it when created, and so
# do the tasks it starts, while a thread-local would be shared by every task on the thread's
# loop, whichever job started it.
_running_job: ContextVar[RunningJob | None] = ContextVar("tinyq_running_job", default=None)


def running_job() -> RunningJob | None:
    """The job running in this context, or None outside any job."""
    return _running_job.get()


def current_job() -> RunningJob:
    """The job this task is running as (its id, queue, attempt, headers, ...; see
    :class:`RunningJob`). Raises RuntimeError outside a job run by a worker: calling the
    task directly runs no job."""
    job = _running_job.get()
    if job is None:
        raise RuntimeError(
            "current_job() is called outside a job: only a task run by a worker has one "
            "(a task called directly, or code after the job returned, has none)")
    return job


@contextmanager
def job_running(job: RunningJob) -> Iterator[None]:
    """Make ``job`` the running job for the block; then restore what was set."""
    token = _running_job.set(job)
    try:
        yield
    finally:
        _running_job.reset(token)
