"""The API for plugin authors: the interfaces a broker, result backend, serializer or executor
implements, the values they exchange with the core, the registry and its hook marker, and the
errors a plugin should raise.

>>> from tinyq_core.plugin import Broker, Delivery, Message, Registry, hookimpl

Application authors need none of this: they import from ``tinyq_core``. Plugin tests use
``tinyq_core.testing``.
"""

from ._async_interfaces import AsyncBroker, AsyncBrokerClient, ThreadedAsyncClient
from ._control_interfaces import CancelRequests, CancelState, ScheduleRecords, UniqueLocks
from ._errors import (
    BadMessage,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    EnqueueError,
    PluginError,
    SerializationError,
)
from ._hooks import hookimpl, hookspec
from ._interfaces import Broker, BrokerAdmin, ResultBackend, WorkerRegistry
from ._limit_interfaces import JobLimits
from ._plugins import BrokerFactory, ExecutorFactory, Registry, SerializerFactory
from ._runtime_interfaces import Executor, Serializer
from ._types import (
    CurrentJob,
    DeadLetter,
    Delivery,
    Job,
    JobStatus,
    Message,
    QueueCounts,
    Result,
    SettleRequest,
    WorkerInfo,
    WorkerState,
)
from ._uri import redact_uri
from ._workflow_interfaces import ChordRecords, ChordReport

__all__ = [
    "AsyncBroker",
    "AsyncBrokerClient",
    "BadMessage",
    "Broker",
    "BrokerAdmin",
    "BrokerError",
    "BrokerFactory",
    "BrokerUnavailable",
    "CancelRequests",
    "CancelState",
    "ChordRecords",
    "ChordReport",
    "ConfigurationError",
    "CurrentJob",
    "DeadLetter",
    "Delivery",
    "EnqueueError",
    "Executor",
    "ExecutorFactory",
    "Job",
    "JobLimits",
    "JobStatus",
    "Message",
    "PluginError",
    "QueueCounts",
    "Registry",
    "Result",
    "ResultBackend",
    "ScheduleRecords",
    "SerializationError",
    "Serializer",
    "SerializerFactory",
    "SettleRequest",
    "ThreadedAsyncClient",
    "UniqueLocks",
    "WorkerInfo",
    "WorkerRegistry",
    "WorkerState",
    "hookimpl",
    "hookspec",
    "redact_uri",
]
