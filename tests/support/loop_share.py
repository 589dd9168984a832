"""tinyq's own share of an event loop's time: the CPU time (of the loop's thread, so not
inflated when a loaded machine deschedules the process or another thread holds the GIL)
spent in tinyq's callbacks, per callback and per loop iteration. A wall-clock lag probe
(loop_lag.py) measures the machine as much as tinyq; this measures tinyq alone."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _is_tinyq(handle: asyncio.Handle) -> bool:
    """A step of a task whose coroutine is tinyq's (not a job's own), or a tinyq callback."""
    callback: Any = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        code = getattr(owner.get_coro(), "cr_code", None)
        return code is not None and "tinyq_core" in code.co_filename
    module = getattr(getattr(callback, "__func__", callback), "__module__", None) or ""
    return module.startswith("tinyq")


class LoopShare:
    def __init__(self) -> None:
        self.worst_callback = 0.0  # seconds of CPU in one tinyq callback
        self.worst_iteration = 0.0  # seconds of CPU in tinyq's callbacks of one iteration
        self.callbacks = 0
        self._local = threading.local()  # per loop thread: this iteration's sum so far

    def _add(self, spent: float) -> None:
        self.callbacks += 1
        self.worst_callback = max(self.worst_callback, spent)
        self._local.sum = getattr(self._local, "sum", 0.0) + spent
        self.worst_iteration = max(self.worst_iteration, self._local.sum)


@contextmanager
def tinyq_loop_share() -> Iterator[LoopShare]:
    """Measures every event loop of the process while the block runs (it patches asyncio's
    Handle._run and BaseEventLoop._run_once, and puts them back)."""
    share = LoopShare()
    handle_class, loop_class = asyncio.events.Handle, asyncio.base_events.BaseEventLoop
    run, run_once = handle_class._run, getattr(loop_class, "_run_once")  # noqa: B009 (untyped private)

    def timed_run(handle: asyncio.Handle) -> None:
        if not _is_tinyq(handle):
            run(handle)
            return
        start = time.thread_time()
        try:
            run(handle)
        finally:
            share._add(time.thread_time() - start)

    def counted_run_once(loop: asyncio.base_events.BaseEventLoop) -> None:
        share._local.sum = 0.0
        run_once(loop)

    setattr(handle_class, "_run", timed_run)  # noqa: B010 (private: no attribute to type)
    setattr(loop_class, "_run_once", counted_run_once)  # noqa: B010
    try:
        yield share
    finally:
        setattr(handle_class, "_run", run)  # noqa: B010
        setattr(loop_class, "_run_once", run_once)  # noqa: B010
