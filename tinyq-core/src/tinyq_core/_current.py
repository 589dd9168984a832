"""The job the worker is running in this context: set by the worker's runner around a task's
call (a sync task's thread, or an async task and the tasks it starts), unset everywhere else.
Private: ``JobHandle.result()`` reads it to refuse a job waiting for itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple


class RunningJob(NamedTuple):
    """The id and queue of the job running in this context."""

    id: str
    queue: str


# A ContextVar rather than a thread-local: an async job's task copies it when created, and so
# do the tasks it starts, while a thread-local would be shared by every task on the thread's
# loop, whichever job started it.
_running_job: ContextVar[RunningJob | None] = ContextVar("tinyq_running_job", default=None)


def running_job() -> RunningJob | None:
    """The job running in this context, or None outside any job."""
    return _running_job.get()


@contextmanager
def job_running(id: str, queue: str) -> Iterator[None]:
    """Make ``id`` (on ``queue``) the running job for the block; then restore what was set."""
    token = _running_job.set(RunningJob(id, queue))
    try:
        yield
    finally:
        _running_job.reset(token)
