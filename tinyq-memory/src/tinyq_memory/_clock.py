"""Clocks for the memory broker: the real one, and a fake one tests move by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Wall-clock time in seconds (Unix time), as brokers store due times."""

    def time(self) -> float:
        return time.time()

    def subscribe(self, callback: Callable[[], None]) -> None:
        """The real clock moves by itself; nobody needs waking."""


class FakeClock(Clock):
    """A clock that only moves when ``advance`` is called, so tests of delays and leases run
    without sleeping. Brokers using it are woken when it moves. It starts at the real time,
    because ``countdown=`` is turned into a due time with the real clock."""

    def __init__(self, start: float | None = None) -> None:
        # Starts at the real time: producers compute countdowns from the real clock.
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def subscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)
