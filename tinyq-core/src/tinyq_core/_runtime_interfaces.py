"""The interfaces for how jobs are encoded and where they run: Serializer and Executor.
Beside the broker's in _interfaces.py; plugins register them through the same hooks."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Serializer(abc.ABC):
    """Turns a job's envelope (a dict of plain values and task arguments) into bytes and back."""

    name: str = ""

    @abc.abstractmethod
    def dumps(self, value: Any) -> bytes:
        """Encode; raise :class:`SerializationError` naming what cannot be encoded."""

    @abc.abstractmethod
    def loads(self, data: bytes) -> Any:
        """Decode; raise :class:`SerializationError` on bad input."""


class Executor(abc.ABC, Generic[T]):
    """Runs work items on behalf of the worker.

    The worker never submits more items than ``concurrency`` at a time minus the running ones,
    so an executor needs no queue of its own beyond hand-off. ``inline`` is true for an
    executor that runs each item in the submitting thread (``submit`` returns when it is
    done): the worker then holds one job at a time.
    """

    inline: bool = False

    @abc.abstractmethod
    def start(self, concurrency: int, run: Callable[[T], None]) -> None:
        """Get ready to call ``run(item)`` for submitted items, ``concurrency`` at a time."""

    @abc.abstractmethod
    def submit(self, item: T) -> None:
        """Run ``item`` as soon as a slot is free."""

    @abc.abstractmethod
    def take_pending(self) -> list[T]:
        """Remove and return the submitted items that have not started yet."""

    @abc.abstractmethod
    def shutdown(self, wait: bool) -> None:
        """Stop; with ``wait``, return only when running items have finished."""
