"""tinyq: a fast job queue with pluggable brokers.

>>> from tinyq_core import Application
>>> app = Application("memory://")
"""

from ._app import Application
from ._errors import (
    BadMessage,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    DuplicateTaskError,
    JobFailed,
    JobTimeout,
    MessageTooLarge,
    PluginError,
    Retry,
    SerializationError,
    TinyqError,
    UnknownTaskError,
)
from ._interfaces import Broker, Executor, ResultBackend, Serializer
from ._plugins import Registry, hookimpl
from ._task import JobHandle, Task, TaskOptions
from ._types import DeadLetter, Delivery, Job, JobStatus, Message, Result
from ._version import __version__
from ._worker import Worker

__all__ = [
    "Application",
    "BadMessage",
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigurationError",
    "DeadLetter",
    "Delivery",
    "DuplicateTaskError",
    "Executor",
    "Job",
    "JobFailed",
    "JobHandle",
    "JobStatus",
    "JobTimeout",
    "Message",
    "MessageTooLarge",
    "PluginError",
    "Registry",
    "Result",
    "ResultBackend",
    "Retry",
    "SerializationError",
    "Serializer",
    "Task",
    "TaskOptions",
    "TinyqError",
    "UnknownTaskError",
    "Worker",
    "__version__",
    "hookimpl",
]

# A library stays quiet unless the application configures logging (the CLI does).
import logging as _logging

_logging.getLogger("tinyq").addHandler(_logging.NullHandler())
