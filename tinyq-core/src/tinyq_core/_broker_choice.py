"""Which broker an Application uses, and the module name its tasks are named after."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from ._interfaces import Broker


def module_name(fn: Callable[..., Any]) -> str:
    """The importable module of ``fn``: a script run as ``python app.py`` is ``app``, so a
    producer script and a worker that imports it agree on task names."""
    module = fn.__module__
    if module == "__main__":
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            return str(spec.name)
        path = getattr(main, "__file__", None)
        if path:
            return str(path).replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
    return module


DEFAULT_BROKER = "sqlite:///tinyq.db"


def chosen_broker(broker: str | Broker | None) -> str | Broker:
    """The broker an Application uses: ``$TINYQ_URL`` over a URI written in code, so one
    variable points producers and workers alike at the same server; else that URI; else a
    SQLite file in the working directory, so a first run needs no server. A Broker instance
    is kept: the code built that object (its client, its options, the reference it holds)
    and no URI can stand in for it."""
    if isinstance(broker, Broker):
        return broker
    return os.environ.get("TINYQ_URL") or broker or DEFAULT_BROKER
