"""The exported names are exactly the public API (a contract: keep, extend, never rename)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import tinyq_core
import tinyq_memory
import tinyq_redis

from support.environment import child_env

# For application authors.
CORE_API = {
    "Application", "AsyncTask", "BrokerError", "BrokerUnavailable", "ConfigurationError",
    "DuplicateTaskError", "EnqueueError", "JobFailed", "JobHandle", "JobStatus", "JobTimeout",
    "MessageTooLarge", "PluginError", "Retry", "SerializationError", "Task", "TaskDecorator",
    "TaskOptions", "TinyqError", "UnknownTaskError", "Worker", "__version__",
    "RunningJob", "current_job", "Schedule", "ScheduleInfo",
    "CancelOutcome", "Cancelled", "JobCancelled", "JobExpired",
    "Chain", "Chord", "Group", "Signature", "WorkflowHandle", "chain", "chord", "group",
}
# For plugin authors.
PLUGIN_API = {
    "BadMessage", "Broker", "BrokerAdmin", "BrokerError", "BrokerFactory", "BrokerUnavailable",
    "ConfigurationError", "DeadLetter", "Delivery", "EnqueueError", "Executor",
    "ExecutorFactory", "Job", "JobStatus", "Message", "PluginError", "Registry", "Result",
    "ResultBackend", "SerializationError", "Serializer", "SerializerFactory", "SettleRequest",
    "hookimpl", "hookspec", "redact_uri", "WorkerRegistry", "WorkerInfo", "WorkerState",
    "CurrentJob", "QueueCounts", "CancelRequests", "CancelState", "ScheduleRecords",
    "UniqueLocks", "JobLimits", "ChordRecords", "ChordReport",
    "AsyncBroker", "AsyncBrokerClient", "ThreadedAsyncClient",
}
# Names that were in tinyq_core before the split: still importable from there.
MOVED = {
    "BadMessage", "Broker", "DeadLetter", "Delivery", "Executor", "Job", "Message",
    "Registry", "Result", "ResultBackend", "Serializer", "hookimpl",
}
MEMORY_API = {"Clock", "FakeClock", "MemoryBroker", "MemoryResultBackend", "drain"}


def test_core_exports_exactly_the_public_api() -> None:
    assert set(tinyq_core.__all__) == CORE_API
    for name in CORE_API:
        assert hasattr(tinyq_core, name), name
    public = {n for n in vars(tinyq_core) if not n.startswith("_")}
    # Submodules: the plugin authors' and the plugin tests' API, the web dashboard's, and
    # the first-party integrations (contrib).
    assert public - {"testing", "plugin", "dashboard", "contrib"} == CORE_API - {"__version__"}


def test_prometheus_module_exports_the_plugin_and_the_collector() -> None:
    pytest.importorskip("prometheus_client")
    import tinyq_core.contrib.prometheus

    assert tinyq_core.contrib.prometheus.__all__ == ["PrometheusMetrics", "QueueSizeCollector"]


def test_dashboard_module_exports_create_app() -> None:
    pytest.importorskip("starlette")
    import tinyq_core.dashboard

    assert tinyq_core.dashboard.__all__ == ["create_app"]


def test_plugin_module_exports_exactly_the_plugin_api() -> None:
    import tinyq_core.plugin

    assert set(tinyq_core.plugin.__all__) == PLUGIN_API
    public = {n for n in vars(tinyq_core.plugin) if not n.startswith("_")}
    assert public - {"annotations"} == PLUGIN_API


def test_moved_names_still_import_from_tinyq_core() -> None:
    import tinyq_core.plugin

    for name in MOVED:
        assert getattr(tinyq_core, name) is getattr(tinyq_core.plugin, name), name
    assert not hasattr(tinyq_core, "NoSuchName")


def test_extensions_import_no_private_core_module() -> None:
    """tinyq-memory and tinyq-redis use tinyq_core's public modules only."""
    root = Path(__file__).resolve().parents[1]
    for package in ("tinyq-memory/src/tinyq_memory", "tinyq-redis/src/tinyq_redis"):
        for path in (root / package).glob("*.py"):
            assert "tinyq_core._" not in path.read_text(), path


def test_memory_exports_exactly_the_public_api() -> None:
    assert set(tinyq_memory.__all__) == MEMORY_API
    public = {n for n in vars(tinyq_memory) if not n.startswith("_")}
    assert public - {"plugin", "pytest_plugin", "testing"} == MEMORY_API


def test_contract_names_from_the_issue() -> None:
    from tinyq_core import Application, JobFailed, TinyqError  # noqa: F401

    assert issubclass(JobFailed, TinyqError)
    assert tinyq_core.__version__ == importlib.metadata.version("tinyq-dev")


def test_redis_exports_exactly_the_public_api() -> None:
    assert set(tinyq_redis.__all__) == {"RedisBroker", "RedisResultBackend"}
    public = {n for n in vars(tinyq_redis) if not n.startswith("_")}
    assert public - {"plugin"} == set(tinyq_redis.__all__)


def test_readme_hello_world_runs(tmp_path: Path) -> None:
    """The README's first command: the hello world on the embedded default (no URI, no
    $TINYQ_URL: tinyq.db in the working directory), enqueued here and run by a real ``tinyq``
    worker process; no server. Run from a scratch folder, so the database lands there."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert "pip install -e . && python examples/hello.py" in readme
    env = {k: v for k, v in child_env().items() if k != "TINYQ_URL"}
    out = subprocess.run([sys.executable, str(root / "examples" / "hello.py")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "add(9, 2) = 11" in out.stdout
    assert "SqliteBroker(" in out.stdout and "tinyq.db" in out.stdout  # the default broker
    assert "Exit workers." in out.stderr  # a worker process ran them and stopped warm
    assert (tmp_path / "tinyq.db").exists()
    assert out.stdout.strip().endswith("all 30 jobs done")
