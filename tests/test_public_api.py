"""The exported names are exactly the public API (a contract: keep, extend, never rename)."""

from __future__ import annotations

import tinyq_core
import tinyq_memory

CORE_API = {
    "Application", "BadMessage", "Broker", "BrokerError", "BrokerUnavailable",
    "ConfigurationError", "DeadLetter", "Delivery", "DuplicateTaskError", "Executor", "Job",
    "JobFailed", "JobHandle", "JobStatus", "JobTimeout", "Message", "PluginError", "Registry",
    "Result", "ResultBackend", "Retry", "Serializer", "SerializationError", "Task",
    "TaskOptions", "TinyqError", "UnknownTaskError", "Worker", "__version__", "hookimpl",
}
MEMORY_API = {"Clock", "FakeClock", "MemoryBroker", "MemoryResultBackend", "drain"}


def test_core_exports_exactly_the_public_api() -> None:
    assert set(tinyq_core.__all__) == CORE_API
    for name in CORE_API:
        assert hasattr(tinyq_core, name), name
    public = {n for n in vars(tinyq_core) if not n.startswith("_")}
    assert public - {"testing"} == CORE_API - {"__version__"}  # testing: a submodule


def test_memory_exports_exactly_the_public_api() -> None:
    assert set(tinyq_memory.__all__) == MEMORY_API
    public = {n for n in vars(tinyq_memory) if not n.startswith("_")}
    assert public - {"plugin", "pytest_plugin", "testing"} == MEMORY_API


def test_contract_names_from_the_issue() -> None:
    from tinyq_core import Application, JobFailed, TinyqError  # noqa: F401

    assert issubclass(JobFailed, TinyqError)
    assert tinyq_core.__version__
