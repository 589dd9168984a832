"""tinyq-core's own plugin: the serializers and executors it ships, registered like any other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._executors import InlineExecutor, ThreadExecutor
from ._hooks import hookimpl
from ._serializers import CloudpickleSerializer, JSONSerializer

if TYPE_CHECKING:  # the registry module imports this one to register it
    from ._plugins import Registry


@hookimpl
def tinyq_register(registry: Registry) -> None:
    registry.add_serializer("json", JSONSerializer)
    registry.add_serializer("cloudpickle", CloudpickleSerializer)
    registry.add_executor("thread", ThreadExecutor)
    registry.add_executor("inline", InlineExecutor)
