"""The worker, split by role: see worker.py for the parts and docs/architecture.md for who
owns which state."""

from .worker import DEFAULT_HEARTBEAT_INTERVAL, Worker

__all__ = ["DEFAULT_HEARTBEAT_INTERVAL", "Worker"]
