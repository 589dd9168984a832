"""The event loop's blocking calls (settling a job: its outbox sends; progress writes) on one
thread of their own, in order, handed over in batches.

Why batches: measured on a drain of 1,000 async jobs ending together, one executor submit
per job made the loop thread meet the I/O thread on the executor's locks a thousand times;
each contended lock gives the GIL away, and taking it back from a thread that is busy
settling costs up to the switch interval (5 ms), so the loop stalled 20-99 ms. Here the loop
appends to a deque and wakes the thread only when it is idle: once per batch."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
from collections.abc import Callable

logger = logging.getLogger("tinyq.worker")


class LoopIo:
    """``submit(call)`` from any thread runs ``call`` later on the I/O thread, after every
    call submitted before it. It returns False once ``close`` began: the caller runs it."""

    def __init__(self) -> None:
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tinyq-loop-io")
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._awake = False  # a drain is queued or running: a new call needs no wake-up
        self._closed = False

    def submit(self, call: Callable[[], None]) -> bool:
        if self._closed:
            return False
        self._calls.append(call)  # atomic under the GIL: no lock for the loop to wait on
        if not self._awake:
            self._awake = True
            try:
                self._thread.submit(self._drain)
            except RuntimeError:  # closed meanwhile: close() runs what is left
                pass
        return True

    def close(self) -> None:
        """Run every call submitted, then end the thread (from the loop's thread, at its end)."""
        self._closed = True
        self._thread.shutdown(wait=True)
        self._run_all()  # what came between the last drain and the shutdown

    def _drain(self) -> None:
        self._run_all()
        # Cleared before a last look: a call appended meanwhile either sees the flag down
        # (and wakes a new drain) or is run here.
        self._awake = False
        self._run_all()

    def _run_all(self) -> None:
        while True:
            try:
                call = self._calls.popleft()
            except IndexError:
                return
            try:
                call()
            except Exception:  # one failed call must not strand the ones after it
                logger.exception("A call of the event loop's I/O thread failed")
