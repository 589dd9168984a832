"""One async job's run on the worker's event loop: its coroutine as a task of its own, ended
by the job's timeout or cancel, with every task the job started (aloop.py runs these)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine, Generator
from contextvars import Context, ContextVar
from typing import Any, TypeVar

from .taskstop import Stopper, TaskStop

T = TypeVar("T")

# The tasks a job started (its own included), so that a timeout or cancel ends them all:
# nothing of an ended job runs on later in the loop all jobs share.
_job_tasks: ContextVar[weakref.WeakSet[asyncio.Task[Any]] | None] = ContextVar(
    "tinyq_job_tasks", default=None)


def job_task_factory(loop: asyncio.AbstractEventLoop,
                     coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
                     context: Context | None = None) -> asyncio.Task[Any]:
    """The loop's task factory: a task made inside a job is noted as one of the job's."""
    if context is None:
        task = asyncio.Task(coro, loop=loop)
    else:  # Python 3.11+ only passes one
        task = asyncio.Task(coro, loop=loop, context=context)  # type: ignore[call-arg]
    tasks = _job_tasks.get() if context is None else context.get(_job_tasks)
    if tasks is not None:
        tasks.add(task)
    return task


async def run_job_task(
    coroutine: Coroutine[Any, Any, T],
    deadline: float | None,
    timeout: float | None,
    on_start: Callable[[Stopper | None], None],
) -> T:
    """Run ``coroutine`` as a task of its own and return its value. Past ``deadline`` (a
    ``time.monotonic()`` time) the task is cancelled and ``JobTimeout`` raised, even if the
    coroutine swallowed its cancellation. ``on_start`` gets a function any thread may call to
    cancel the job (then ``Cancelled`` is raised), and None once it ended. Cancelling the
    caller cancels the task too (a cold stop)."""
    loop = asyncio.get_running_loop()
    started: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
    token = _job_tasks.set(started)  # in the caller's task's context only: the job's run
    task = loop.create_task(coroutine)  # a copy of the context: current_job() is the job's
    stop = TaskStop(loop, task, timeout, on_start)
    stop.arm(deadline)
    try:
        value = await task
    except BaseException as exc:
        # A cancel of the runner's own task (a cold stop) is not ours: it goes on as it is.
        error = stop.outcome(exc)
        if error is None:
            raise
        raise error from error.__cause__
    finally:
        stop.disarm()
        if stop.stopped or not task.done():
            for leftover in list(started):  # what the job started and left running
                leftover.cancel()
        _job_tasks.reset(token)
    stop.check()
    return value
