"""tinyq-core's own plugin: the serializers and executors it ships, registered like any other."""

from __future__ import annotations

from ._executors import InlineExecutor, ThreadExecutor
from ._plugins import Registry, hookimpl
from ._serializers import CloudpickleSerializer, JSONSerializer


@hookimpl
def tinyq_register(registry: Registry) -> None:
    registry.add_serializer("json", JSONSerializer)
    registry.add_serializer("cloudpickle", CloudpickleSerializer)
    registry.add_executor("thread", ThreadExecutor)
    registry.add_executor("inline", InlineExecutor)
