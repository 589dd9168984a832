"""tinyq-redis's plugin: ``redis://``, ``rediss://`` (TLS) and ``unix://`` brokers."""

from __future__ import annotations

from typing import Any

from tinyq_core import Registry, hookimpl

from ._broker import RedisBroker


def make_broker(uri: str, **options: Any) -> RedisBroker:
    return RedisBroker(uri, **options)


@hookimpl
def tinyq_register(registry: Registry) -> None:
    for scheme in ("redis", "rediss", "unix"):
        registry.add_broker(scheme, make_broker)
