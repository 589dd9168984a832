"""The worker, split by role: see worker.py for the parts and docs/architecture.md for who
owns which state."""

from .worker import Worker

__all__ = ["Worker"]
