"""tinyq-memory: an in-process broker and result backend for ``memory://``, for tests."""

from ._broker import MemoryBroker
from ._clock import Clock, FakeClock
from ._results import MemoryResultBackend
from .testing import drain

__all__ = ["Clock", "FakeClock", "MemoryBroker", "MemoryResultBackend", "drain"]
