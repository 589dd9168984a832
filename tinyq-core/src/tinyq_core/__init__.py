"""tinyq: a fast job queue with pluggable brokers.

>>> from tinyq_core import Application
>>> app = Application("memory://")

This module is the API for application authors. Plugin authors import from
``tinyq_core.plugin``, plugin tests from ``tinyq_core.testing``.
"""

from typing import Any as _Any

from ._app import Application
from ._cancelling import CancelOutcome
from ._current import RunningJob, current_job
from ._errors import (
    BrokerError,
    BrokerUnavailable,
    Cancelled,
    ConfigurationError,
    DuplicateTaskError,
    EnqueueError,
    JobCancelled,
    JobExpired,
    JobFailed,
    JobTimeout,
    MessageTooLarge,
    PluginError,
    Retry,
    SerializationError,
    TinyqError,
    UnknownTaskError,
)
from ._handle import JobHandle
from ._schedules import Schedule, ScheduleInfo
from ._task import AsyncTask, Task, TaskDecorator, TaskOptions
from ._types import JobStatus
from ._version import __version__
from ._worker import Worker
from ._workflows import Chain, Chord, Group, Signature, WorkflowHandle, chain, chord, group

__all__ = [
    "Application",
    "AsyncTask",
    "BrokerError",
    "BrokerUnavailable",
    "CancelOutcome",
    "Cancelled",
    "Chain",
    "Chord",
    "ConfigurationError",
    "DuplicateTaskError",
    "EnqueueError",
    "Group",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobHandle",
    "JobStatus",
    "JobTimeout",
    "MessageTooLarge",
    "PluginError",
    "Retry",
    "RunningJob",
    "Schedule",
    "ScheduleInfo",
    "SerializationError",
    "Signature",
    "Task",
    "TaskDecorator",
    "TaskOptions",
    "TinyqError",
    "UnknownTaskError",
    "Worker",
    "WorkflowHandle",
    "__version__",
    "chain",
    "chord",
    "current_job",
    "group",
]

# Names that lived here before the API was split by audience; they keep working, from their
# new home, without being part of this module's API.
_MOVED_TO_PLUGIN = frozenset({
    "BadMessage", "Broker", "DeadLetter", "Delivery", "Executor", "Job", "Message",
    "Registry", "Result", "ResultBackend", "Serializer", "hookimpl",
})


def __getattr__(name: str) -> _Any:
    if name in _MOVED_TO_PLUGIN:
        from . import plugin  # on demand: most applications never need it

        return getattr(plugin, name)
    raise AttributeError(f"module 'tinyq_core' has no attribute {name!r}")


# A library stays quiet unless the application configures logging (the CLI does).
import logging as _logging  # noqa: E402

_logging.getLogger("tinyq").addHandler(_logging.NullHandler())
