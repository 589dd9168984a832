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
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .._errors import Cancelled
from .policy import timed_out


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
    on_start: Callable[[Callable[[], None] | None], None] | None = None,
) -> Any:
    """Run ``coroutine`` to its end on ``loop`` and return its value. Past ``deadline`` (a
    ``time.monotonic()`` time) the task is cancelled and ``JobTimeout`` raised, even if the
    coroutine swallowed its cancellation; then every task still on the loop (what the job
    started and did not await) is cancelled too. ``on_start`` is given a function that any
    thread may call to cancel the job (``h.cancel()``: then ``Cancelled`` is raised, unless
    the coroutine swallowed its cancellation and returned), and None once it ended."""
    task = loop.create_task(coroutine)
    expired = cancelled = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    def cancel() -> None:
        nonlocal cancelled
        if not task.done():
            cancelled = True
            task.cancel()

    def cancel_from_any_thread() -> None:
        loop.call_soon_threadsafe(cancel)

    if on_start is not None:
        on_start(cancel_from_any_thread)

    timer = None
    if deadline is not None:
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), expire)
    try:
        value = loop.run_until_complete(task)
    except BaseException as exc:
        if cancelled and not expired and isinstance(exc, asyncio.CancelledError):
            raise Cancelled("the job was cancelled") from None
        if not expired:
            raise
        cause = None if isinstance(exc, asyncio.CancelledError) else exc
        raise timed_out(timeout) from cause
    finally:
        if on_start is not None:
            on_start(None)
        if timer is not None:
            timer.cancel()
        if not task.done():  # an exception from outside the task, like KeyboardInterrupt
            task.cancel()
        if expired or cancelled or not task.done():
            cancel_leftovers(loop)
    if expired:
        raise timed_out(timeout)
    return value


def cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every task still pending on ``loop`` and wait until they have ended."""
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        with contextlib.suppress(BaseException):
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
