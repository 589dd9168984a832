"""The built-in executors: ``thread`` (a pool of threads, the default) and ``inline``."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ._runtime_interfaces import Executor

T = TypeVar("T")


class ThreadExecutor(Executor[T], Generic[T]):
    """``concurrency`` daemon threads taking items from one hand-off deque.

    Daemon threads, because a thread stuck in a job cannot be stopped from outside: a cold
    shutdown gives its job back to the broker and leaves the thread to die with the process.
    """

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._run: Callable[[T], None] | None = None

    def start(self, concurrency: int, run: Callable[[T], None]) -> None:
        self._run = run
        for n in range(concurrency):
            thread = threading.Thread(target=self._loop, name=f"Worker-{n + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self) -> None:
        assert self._run is not None
        while True:
            with self._cond:
                while not self._items and not self._stopping:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
            self._run(item)

    def submit(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def take_pending(self) -> list[T]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def shutdown(self, wait: bool) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()


class InlineExecutor(Executor[T], Generic[T]):
    """Runs each item at once in the submitting thread: one job at a time, easy to debug."""

    inline = True

    def __init__(self) -> None:
        self._run: Callable[[T], None] | None = None

    def start(self, concurrency: int, run: Callable[[T], None]) -> None:
        self._run = run

    def submit(self, item: T) -> None:
        assert self._run is not None, "start() the executor first"
        self._run(item)

    def take_pending(self) -> list[T]:
        return []

    def shutdown(self, wait: bool) -> None:
        pass
