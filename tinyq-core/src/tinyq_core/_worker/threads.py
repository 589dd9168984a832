"""Thread helpers: interrupting a job thread, and a group that joins every helper it started."""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from types import TracebackType

logger = logging.getLogger("tinyq.worker")


def raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Make ``exc_type`` raise in the thread ``thread_id`` at its next Python bytecode (a
    thread blocked in C code sees it when the call returns); ``None`` cancels one that has
    not been raised yet. True if the thread exists.

    CPython answers with how many thread states it changed: more than one would be an
    interpreter bug that must not go on, so the request is withdrawn and reported."""
    ident = ctypes.c_ulong(thread_id)
    payload = ctypes.py_object(exc_type) if exc_type is not None else None
    count = ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, payload)
    if count > 1:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, None)
        raise SystemError(f"raising in thread {thread_id} changed {count} thread states")
    return bool(count)


class ThreadGroup:
    """Starts helper threads and, on leaving the ``with`` block, joins every one of them:
    no helper outlives the scope that started it. The block's owner must first tell the
    helpers to end (they wait on an event it sets)."""

    def __init__(self, join_timeout: float = 10.0) -> None:
        self.join_timeout = join_timeout
        self._threads: list[threading.Thread] = []

    def start(self, target: Callable[[], None], name: str) -> None:
        # Daemon, so that a helper stuck in a call that never returns cannot keep the process
        # alive after the join below gave up on it (and said so).
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def __enter__(self) -> ThreadGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for thread in self._threads:
            thread.join(self.join_timeout)
            if thread.is_alive():
                logger.error("Helper thread %s did not end within %.0fs", thread.name,
                             self.join_timeout)

    def alive(self) -> list[str]:
        """The names of the threads still running."""
        return [t.name for t in self._threads if t.is_alive()]
