"""Plugin discovery: pluggy hooks fed from the ``tinyq`` entry-point group.

A plugin module implements one hook, ``tinyq_register(registry)``, and adds what it provides:
brokers by URI scheme, serializers and executors by name. The built-in serializers and executors
register through the same hook (see ``_builtins``). Entry points are loaded one by one so that a
broken plugin is reported by name and the others still load; two plugins claiming one name is an
error naming both.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from . import _builtins
from ._errors import PluginError
from ._hooks import PROJECT, HookSpecs
from ._interfaces import Broker
from ._lifecycle import NO_HOOKS, Hooks
from ._runtime_interfaces import Executor, Serializer
from ._uri import redact_uri

logger = logging.getLogger("tinyq.plugins")

BrokerFactory = Callable[[str], Broker]  # factory(uri) -> Broker; options ride in the URI
SerializerFactory = Callable[[], Serializer]
ExecutorFactory = Callable[[], Executor[Any]]

ENTRY_POINT_GROUP = "tinyq"
DISABLE_AUTOLOAD_ENV = "TINYQ_DISABLE_PLUGIN_AUTOLOAD"

# Where to get a scheme nobody registered: shown in the "unknown scheme" error.
KNOWN_PROVIDERS = {
    "redis": "tinyq-redis",
    "rediss": "tinyq-redis",
    "unix": "tinyq-redis",
    "redis+cluster": "tinyq-redis",
    "redis+sentinel": "tinyq-redis",
    "rediss+cluster": "tinyq-redis",
    "rediss+sentinel": "tinyq-redis",
    "memory": "tinyq-memory",
    "sqlite": "tinyq-sqlite",
}


@attrs.define
class _Entry:
    factory: Callable[..., Any]
    plugin: str


class Registry:
    """What the installed plugins provide, by kind and name."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, _Entry]] = {"broker": {}, "serializer": {}, "executor": {}}
        self.broken: dict[str, str] = {}  # plugin name -> why it failed to load
        self._current = "<direct>"
        self.hooks: Hooks = NO_HOOKS  # the job lifecycle hooks of the plugins (_lifecycle.py)

    def _add(self, kind: str, name: str, factory: Callable[..., Any]) -> None:
        table = self._kinds[kind]
        if name in table:
            raise PluginError(
                f"{kind} {name!r} is registered by two plugins: {table[name].plugin!r} and "
                f"{self._current!r}; uninstall one of them"
            )
        table[name] = _Entry(factory, self._current)

    def add_broker(self, scheme: str, factory: BrokerFactory) -> None:
        """Register a broker for URIs ``scheme://...``: ``factory(uri)`` returns a Broker
        without connecting yet. The broker's options come from the URI's query string
        (``scheme://host/?visibility_timeout=5``); the factory rejects unknown ones."""
        self._add("broker", scheme, factory)

    def add_serializer(self, name: str, factory: SerializerFactory) -> None:
        """Register a serializer chosen by ``Application(serializer=name)``; ``factory()``."""
        self._add("serializer", name, factory)

    def add_executor(self, name: str, factory: ExecutorFactory) -> None:
        """Register an executor chosen by ``Application(executor=name)``; ``factory()``."""
        self._add("executor", name, factory)

    def names(self, kind: str) -> list[str]:
        """The registered names of ``kind`` (``"broker"``, ``"serializer"``, ``"executor"``)."""
        return sorted(self._kinds[kind])

    def provider(self, kind: str, name: str) -> str:
        """The plugin that registered ``name``."""
        return self._kinds[kind][name].plugin

    def check_broker_uri(self, uri: str) -> _Entry:
        """The broker entry for ``uri``'s scheme, or a clear error listing what is installed."""
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        entry = self._kinds["broker"].get(scheme)
        if entry is None:
            raise PluginError(self._unknown_scheme(uri, scheme))
        return entry

    def broker(self, uri: str) -> Broker:
        """A new broker for ``uri``, from the factory registered for its scheme."""
        broker: Broker = self.check_broker_uri(uri).factory(uri)
        return broker

    def _unknown_scheme(self, uri: str, scheme: str) -> str:
        if not scheme:
            return f"broker URI {redact_uri(uri)!r} has no scheme: write it like 'redis://localhost:6379/0'"
        installed = ", ".join(f"{s}://" for s in self.names("broker")) or "none"
        hint = KNOWN_PROVIDERS.get(scheme)
        text = f"unknown broker URI scheme {scheme!r} (installed: {installed})"
        if hint:
            text += f"; install it with: pip install {hint}"
        if self.broken:
            text += "; plugins that failed to load: " + ", ".join(
                f"{name} ({why})" for name, why in sorted(self.broken.items())
            )
        return text

    def _make(self, kind: str, name: str) -> Any:
        entry = self._kinds[kind].get(name)
        if entry is None:
            raise PluginError(
                f"unknown {kind} {name!r} (installed: {', '.join(self.names(kind)) or 'none'})"
            )
        return entry.factory()

    def serializer(self, name: str) -> Serializer:
        result: Serializer = self._make("serializer", name)
        return result

    def executor(self, name: str) -> Executor[Any]:
        result: Executor[Any] = self._make("executor", name)
        return result


_entry_point_cache: list[tuple[str, Any]] | None = None
_broken_cache: dict[str, str] = {}


def _entry_point_plugins() -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Load the ``tinyq`` entry points once per process, each guarded on its own."""
    global _entry_point_cache
    if _entry_point_cache is None:
        loaded: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(ep.name)
            try:
                loaded.append((ep.name, ep.load()))
            except Exception as exc:
                _broken_cache[ep.name] = f"{type(exc).__name__}: {exc}"
                logger.warning("tinyq plugin %r failed to load: %s", ep.name, exc)
        _entry_point_cache = loaded
    return _entry_point_cache, dict(_broken_cache)


def build_registry(plugins: Iterable[Any] = ()) -> Registry:
    """A registry holding the built-ins, the installed plugins (unless autoload is disabled)
    and ``plugins`` (modules or objects implementing any of the hooks in _hooks.py)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    registry = Registry()
    pm.register(_builtins, name="tinyq_core")
    if os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes"):
        found, broken = _entry_point_plugins()
        registry.broken.update(broken)
        for name, plugin in found:
            if pm.is_registered(plugin) or pm.has_plugin(name):
                continue
            pm.register(plugin, name=name)
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin, name=getattr(plugin, "__name__", None) or repr(plugin))
    pm.check_pending()
    # Call each implementation on its own: errors are attributed to the plugin that raised.
    for impl in reversed(pm.hook.tinyq_register.get_hookimpls()):
        registry._current = impl.plugin_name
        try:
            impl.function(**{arg: registry for arg in impl.argnames})
        except PluginError:
            raise
        except Exception as exc:
            registry.broken[impl.plugin_name] = f"{type(exc).__name__}: {exc}"
            logger.warning("tinyq plugin %r failed to register: %s", impl.plugin_name, exc)
    registry._current = "<direct>"
    registry.hooks = Hooks(pm)
    return registry
