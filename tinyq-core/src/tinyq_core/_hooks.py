"""The hook markers and specifications: a leaf module, so that plugins (the built-in ones
included) import it without importing the registry that loads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._plugins import Registry

PROJECT = "tinyq"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The hooks a tinyq plugin may implement."""

    @hookspec
    def tinyq_register(self, registry: Registry) -> None:
        """Add the brokers, serializers and executors this plugin provides to ``registry``
        (``add_broker``, ``add_serializer``, ``add_executor``). Called once per
        :class:`~tinyq_core.Application`; raising is reported with the plugin's name."""
