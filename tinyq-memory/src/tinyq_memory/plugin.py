"""tinyq-memory's plugin: registers the ``memory://`` broker through the ``tinyq`` hook."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tinyq_core.plugin import ConfigurationError, Registry, hookimpl

from ._broker import MemoryBroker


def make_broker(uri: str) -> MemoryBroker:
    """``memory://`` or ``memory://?visibility_timeout=5``."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(uri).query).items()}
    unknown = set(query) - {"visibility_timeout"}
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) for memory://: {', '.join(sorted(unknown))} "
            "(known: visibility_timeout)"
        )
    try:
        return MemoryBroker(visibility_timeout=float(query.get("visibility_timeout", 30.0)))
    except ValueError:
        raise ConfigurationError(
            "memory:// visibility_timeout must be a number of seconds"
        ) from None


@hookimpl
def tinyq_register(registry: Registry) -> None:
    registry.add_broker("memory", make_broker)
