"""The worker, split by role: see worker.py for the parts and docs/architecture.md for who
owns which state."""

from .aloop import DEFAULT_ASYNC_CONCURRENCY
from .worker import DEFAULT_HEARTBEAT_INTERVAL, Worker

__all__ = ["DEFAULT_ASYNC_CONCURRENCY", "DEFAULT_HEARTBEAT_INTERVAL", "Worker"]
