"""Plugin discovery and the registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from typing import Any

import pytest

from tinyq_core import Application, PluginError, Registry, hookimpl
from tinyq_core._plugins import build_registry
from tinyq_memory import MemoryBroker

from support.environment import child_env


def plugin(**register: Any) -> types.SimpleNamespace:
    """A plugin object registering brokers given as scheme=factory."""

    @hookimpl
    def tinyq_register(registry: Registry) -> None:
        for scheme, factory in register.items():
            registry.add_broker(scheme, factory)

    return types.SimpleNamespace(tinyq_register=tinyq_register, __name__=f"plugin-{id(register)}")


def test_memory_broker_comes_from_its_entry_point() -> None:
    registry = build_registry()
    assert "memory" in registry.names("broker")
    assert registry.provider("broker", "memory") == "tinyq_memory"
    assert registry.provider("serializer", "json") == "tinyq_core"
    assert {"thread", "inline"} <= set(registry.names("executor"))


def test_a_plugin_registered_without_installing_it() -> None:
    made = []

    def factory(uri: str, **options: Any) -> MemoryBroker:
        made.append(uri)
        return MemoryBroker()

    app = Application("fake://x", plugins=[plugin(fake=factory)])
    assert isinstance(app.broker, MemoryBroker)
    assert made == ["fake://x"]


def test_two_plugins_claiming_one_scheme_is_an_error_naming_both() -> None:
    first = plugin(dup=lambda uri: MemoryBroker())
    second = plugin(dup=lambda uri: MemoryBroker())
    with pytest.raises(PluginError) as info:
        build_registry([first, second])
    text = str(info.value)
    assert "'dup'" in text and first.__name__ in text and second.__name__ in text


def test_a_plugin_cannot_take_over_a_builtin_name() -> None:
    with pytest.raises(PluginError, match="tinyq_memory"):
        build_registry([plugin(memory=lambda uri: MemoryBroker())])


def test_unknown_scheme_lists_installed_and_suggests_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tinyq_memory.plugin

    monkeypatch.setenv("TINYQ_DISABLE_PLUGIN_AUTOLOAD", "1")  # as if tinyq-redis were absent
    with pytest.raises(PluginError) as info:
        Application("redis://localhost", plugins=[tinyq_memory.plugin])
    text = str(info.value)
    assert "unknown broker URI scheme 'redis'" in text
    assert "memory://" in text
    assert "pip install tinyq-redis" in text
    with pytest.raises(PluginError, match="no scheme"):
        Application("localhost:6379", plugins=[tinyq_memory.plugin])


def test_a_broken_plugin_is_reported_and_does_not_break_the_others() -> None:
    @hookimpl
    def tinyq_register(registry: Registry) -> None:
        raise RuntimeError("I am broken")

    broken = types.SimpleNamespace(tinyq_register=tinyq_register, __name__="broken_plugin")
    registry = build_registry([broken, plugin(fine=lambda uri: MemoryBroker())])
    assert "fine" in registry.names("broker")
    assert "memory" in registry.names("broker")
    assert "I am broken" in registry.broken["broken_plugin"]


def test_misspelt_hook_is_caught() -> None:
    @hookimpl
    def tinyq_registr(registry: Registry) -> None:
        pass

    with pytest.raises(Exception, match="tinyq_registr"):
        build_registry([types.SimpleNamespace(tinyq_registr=tinyq_registr, __name__="typo")])


def run_python(code: str, tmp_path: Any, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, env=child_env(env, path=[tmp_path]), cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_broken_entry_point_is_reported_by_name(tmp_path: Any) -> None:
    # A distribution on sys.path whose tinyq entry point fails to import.
    dist = tmp_path / "brokenplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tinyq]\nbrokenplug = brokenplug_mod\n")
    (tmp_path / "brokenplug_mod.py").write_text("raise ImportError('missing dependency xyz')\n")
    out = run_python(
        """
        from tinyq_core import Application, PluginError
        app = Application("memory://")  # the memory plugin still loads
        try:
            Application("nosuch://")
        except PluginError as e:
            print("ERR", e)
        """,
        tmp_path,
    )
    assert "brokenplug" in out and "missing dependency xyz" in out
    assert "plugins that failed to load: brokenplug" in out


def test_autoload_can_be_disabled(tmp_path: Any) -> None:
    out = run_python(
        """
        from tinyq_core._plugins import build_registry
        print("BROKERS", build_registry().names("broker"))
        """,
        tmp_path,
        env={"TINYQ_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert "BROKERS []" in out


def test_an_installed_plugin_gets_the_lifecycle_hooks(tmp_path: Any) -> None:
    # A distribution on sys.path whose tinyq entry point implements lifecycle hooks only.
    dist = tmp_path / "watchplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: watchplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tinyq]\nwatchplug = watchplug_mod\n")
    (tmp_path / "watchplug_mod.py").write_text(
        "from tinyq_core.plugin import hookimpl\n"
        "@hookimpl\n"
        "def tinyq_before_enqueue(headers):\n"
        "    headers['via'] = 'watchplug'\n"
        "@hookimpl\n"
        "def tinyq_job_succeeded(job, value):\n"
        "    print('SUCCEEDED', job.headers['via'], value)\n")
    out = run_python(
        """
        from tinyq_core import Application
        from tinyq_memory import drain
        app = Application("memory://")
        @app.task()
        def add(a, b):
            return a + b
        add.delay(1, 2)
        drain(app)
        """,
        tmp_path,
    )
    assert "SUCCEEDED watchplug 3" in out
