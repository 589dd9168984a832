"""Running an ``async def`` job on its executor thread's event loop, as a task that the loop
itself cancels at the job's deadline.

The housekeeper interrupts a sync job by raising ``JobTimeout`` in its thread. For an async
job that would land in the loop's own code (usually its wait for I/O), not in the coroutine:
``run_until_complete`` would give up and leave the job's task pending on the loop, to resume
inside whichever async job the thread runs next. Cancelling the task through the loop ends
the coroutine where it awaits and leaves the loop clean for the next job.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from .taskstop import Stopper, TaskStop


class ThreadLoops:
    """One event loop per executor thread, made on first use and reused by its later jobs."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._local.loop = asyncio.new_event_loop()
        return loop


def run_coroutine(
    loop: asyncio.AbstractEventLoop,
    coroutine: Coroutine[Any, Any, Any],
    deadline: float | None,
    timeout: float | None,
    on_start: Callable[[Stopper | None], None] | None = None,
) -> Any:
    """Run ``coroutine`` to its end on ``loop`` and return its value. Past ``deadline`` (a
    ``time.monotonic()`` time) the task is cancelled and ``JobTimeout`` raised, even if the
    coroutine swallowed its cancellation; then every task still on the loop (what the job
    started and did not await) is cancelled too. ``on_start`` is given a function that any
    thread may call to cancel the job (``h.cancel()``: then ``Cancelled`` is raised, unless
    the coroutine swallowed its cancellation and returned), and None once it ended."""
    task = loop.create_task(coroutine)
    stop = TaskStop(loop, task, timeout, on_start)
    stop.arm(deadline)
    try:
        value = loop.run_until_complete(task)
    except BaseException as exc:
        error = stop.outcome(exc)
        if error is None:
            raise
        raise error from error.__cause__
    finally:
        stop.disarm()
        if not task.done():  # an exception from outside the task, like KeyboardInterrupt
            task.cancel()
        if stop.stopped or not task.done():
            cancel_leftovers(loop)
    stop.check()
    return value


def cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every task still pending on ``loop`` and wait until they have ended."""
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        with contextlib.suppress(BaseException):
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
