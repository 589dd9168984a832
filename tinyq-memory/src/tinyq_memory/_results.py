"""The in-memory result backend, and what it shares with the memory broker: one Condition
per object, an availability switch for simulated outages, and waits bounded by the clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from tinyq_core.plugin import BrokerUnavailable, Result, ResultBackend

from ._clock import Clock


class _Base:
    def __init__(self, clock: Clock | None) -> None:
        self.clock = clock or Clock()
        self._cond = threading.Condition()
        self._available = True
        self._largest: int | None = None  # see MemoryBroker.refuse_values_over
        self.clock.subscribe(self._wake)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _check(self) -> None:
        if not self._available:
            raise BrokerUnavailable("the memory broker is down (set_available(False))")

    def _check_sizes(self, *values: bytes | str) -> None:
        """As Redis does with a value over its proto-max-bulk-len: the connection drops, so
        the whole call fails, and looks like an outage."""
        largest = self._largest
        if largest is None:
            return
        for value in values:
            if len(value) > largest:
                raise BrokerUnavailable(
                    f"the memory broker dropped the call: a value of {len(value):,} bytes is "
                    f"over its limit of {largest:,} (refuse_values_over)"
                )

    def _wait(self, deadline: float, until: float | None = None) -> bool:
        """Wait for a notification, at most until the real ``deadline`` (monotonic) or the
        clock time ``until``; False once the deadline passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if until is not None and type(self.clock) is Clock:
            remaining = min(remaining, max(0.0, until - self.clock.time()))
        self._cond.wait(remaining)
        return True


class MemoryResultBackend(_Base, ResultBackend):
    """Results in a dict with expiry times; ``get`` waits on a condition variable."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._results: dict[tuple[str, str], tuple[Result, float]] = {}  # by (queue, job id)
        self._progress: dict[tuple[str, str], tuple[bytes, float]] = {}  # the same, expiring
        self._listeners: set[Callable[[], None]] = set()  # async waiters' wake-ups (_async.py)

    def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` after each store, from the storing thread, until :meth:`unlisten`."""
        with self._cond:
            self._listeners.add(wake)

    def unlisten(self, wake: Callable[[], None]) -> None:
        with self._cond:
            self._listeners.discard(wake)

    def store(self, results: Sequence[Result], ttl: float) -> None:
        with self._cond:
            self._check()
            self._check_sizes(*(result.body for result in results))
            expires = self.clock.time() + ttl
            for result in results:
                if result.ok or not self.succeeded(result.queue, result.job_id):
                    self._results[result.queue, result.job_id] = (result, expires)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def succeeded(self, queue: str, job_id: str) -> bool:
        """Whether a success of ``job_id`` is stored (a failure never replaces it)."""
        with self._cond:
            item = self._results.get((queue, job_id))
            return item is not None and item[0].ok and item[1] > self.clock.time()

    def forget(self, queue: str, job_ids: Sequence[str]) -> None:
        """Delete the results of ``job_ids`` (requeued dead letters)."""
        with self._cond:
            for job_id in job_ids:
                self._results.pop((queue, job_id), None)

    def get(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        with self._cond:
            while True:
                self._check()
                item = self._results.get((queue, job_id))
                if item is not None:
                    if item[1] > self.clock.time():
                        return item[0]
                    del self._results[queue, job_id]
                if not self._wait(min(deadline, time.monotonic() + 3600)):
                    return None

    def store_progress(self, job_id: str, queue: str, body: bytes, ttl: float) -> None:
        with self._cond:
            self._check()
            self._progress[queue, job_id] = (body, self.clock.time() + ttl)

    def progress(self, job_id: str, queue: str) -> bytes | None:
        with self._cond:
            self._check()
            item = self._progress.get((queue, job_id))
            if item is None:
                return None
            if item[1] > self.clock.time():
                return item[0]
            del self._progress[queue, job_id]
            return None
