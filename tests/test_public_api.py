"""The exported names are exactly the public API (a contract: keep, extend, never rename)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tinyq_core
import tinyq_memory
import tinyq_redis

CORE_API = {
    "Application", "BadMessage", "Broker", "BrokerError", "BrokerUnavailable",
    "ConfigurationError", "DeadLetter", "Delivery", "DuplicateTaskError", "Executor", "Job",
    "JobFailed", "JobHandle", "JobStatus", "JobTimeout", "Message", "MessageTooLarge",
    "PluginError", "Registry",
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


def test_redis_exports_exactly_the_public_api() -> None:
    assert set(tinyq_redis.__all__) == {"RedisBroker", "RedisResultBackend"}
    public = {n for n in vars(tinyq_redis) if not n.startswith("_")}
    assert public - {"plugin"} == set(tinyq_redis.__all__)


def test_readme_hello_world_runs() -> None:
    """The README's first command: the hello world on the memory broker, no server."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert "pip install -e . && python examples/hello.py" in readme
    out = subprocess.run([sys.executable, "examples/hello.py"], cwd=root, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "add(9, 2) = 11" in out.stdout
    assert out.stdout.strip().endswith("all 30 jobs done")
