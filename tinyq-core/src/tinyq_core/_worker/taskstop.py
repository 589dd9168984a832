"""How a job's coroutine task is ended early, whichever loop runs it (the worker's event
loop, jobtasks.py, or an executor thread's own loop, coroutines.py): cancelled at the job's
deadline (then ``JobTimeout``) or on ``h.cancel()`` (then ``Cancelled``). One place for both
paths, so a timeout or cancel means the same whichever runs the job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .._errors import Cancelled
from .policy import timed_out

Stopper = Callable[[], None]


class TaskStop:
    """The deadline timer and the cancel of one job's ``task`` on ``loop``. ``arm`` starts
    the timer and gives ``on_start`` a function any thread may call to cancel the job;
    ``disarm`` undoes both once the task ended. ``outcome`` turns the exception the task
    ended with into the job's (JobTimeout, Cancelled, or None: raise it as it is)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any],
                 timeout: float | None,
                 on_start: Callable[[Stopper | None], None] | None) -> None:
        self._loop, self._task, self._timeout = loop, task, timeout
        self._on_start = on_start
        self._timer: asyncio.TimerHandle | None = None
        self.expired = self.cancelled = False

    def arm(self, deadline: float | None) -> None:
        if self._on_start is not None:
            self._on_start(self._cancel_from_any_thread)
        if deadline is not None:
            self._timer = self._loop.call_later(max(0.0, deadline - time.monotonic()),
                                                self._expire)

    def disarm(self) -> None:
        if self._on_start is not None:
            self._on_start(None)
        if self._timer is not None:
            self._timer.cancel()

    @property
    def stopped(self) -> bool:
        """Ended early (timeout or cancel): whatever the job started must end too."""
        return self.expired or self.cancelled

    def outcome(self, exc: BaseException) -> BaseException | None:
        if self.expired:
            error = timed_out(self._timeout)
            # A swallowed cancellation says nothing; the job's own error is the cause.
            error.__cause__ = None if isinstance(exc, asyncio.CancelledError) else exc
            return error
        if self.cancelled and isinstance(exc, asyncio.CancelledError) and self._task.cancelled():
            return Cancelled("the job was cancelled")  # its cause: None
        return None  # not ours (a cold stop of the runner, KeyboardInterrupt): as it is

    def check(self) -> None:
        """The task returned: past its deadline it still timed out (it swallowed the cancel)."""
        if self.expired:
            raise timed_out(self._timeout)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def _cancel(self) -> None:
        if not self._task.done():
            self.cancelled = True
            self._task.cancel()

    def _cancel_from_any_thread(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._cancel)
        except RuntimeError:  # the loop closed: nothing runs any more
            pass
