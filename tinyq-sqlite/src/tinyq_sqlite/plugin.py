"""tinyq-sqlite's plugin: registers the ``sqlite://`` broker through the ``tinyq`` hook."""

from __future__ import annotations

from tinyq_core.plugin import Registry, hookimpl

from ._broker import SqliteBroker


def make_broker(uri: str) -> SqliteBroker:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db``, options in the query string
    (see docs/sqlite.md); the file is opened on first use."""
    return SqliteBroker(uri)


@hookimpl
def tinyq_register(registry: Registry) -> None:
    registry.add_broker("sqlite", make_broker)
