"""tinyq-redis's plugin: ``redis://``, ``rediss://`` (TLS), ``unix://``, and Cluster and
Sentinel deployments (``redis+cluster://``, ``redis+sentinel://`` and their TLS forms)."""

from __future__ import annotations

from tinyq_core.plugin import Registry, hookimpl

from ._broker import RedisBroker
from ._connection import SCHEMES


def make_broker(uri: str) -> RedisBroker:
    """The broker for ``uri``; its options ride in the query string (see docs/redis.md)."""
    return RedisBroker(uri)


@hookimpl
def tinyq_register(registry: Registry) -> None:
    for scheme in SCHEMES:
        registry.add_broker(scheme, make_broker)
