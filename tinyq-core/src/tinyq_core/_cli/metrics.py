"""``tinyq --metrics-port PORT [--metrics-host HOST]``: Prometheus metrics of the worker,
served over HTTP (on every interface unless HOST names one).

With one process the worker serves its own metrics. With ``-p N`` the supervisor points every
child at a fresh directory (``PROMETHEUS_MULTIPROC_DIR``, prometheus_client's multiprocess
mode), serves the sum over the children's files, marks a dead child's live gauges gone, and
deletes the directory at exit; the children only write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from .._app import Application
from .._interfaces import BrokerAdmin
from .loading import CommandError

logger = logging.getLogger("tinyq.runner")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_HOST = "0.0.0.0"  # every interface: Prometheus scrapes from another machine
MISSING = ("--metrics-port needs prometheus_client, which is not installed: "
           "pip install 'tinyq-core[prometheus]'")


def prometheus() -> ModuleType:
    """The plugin module, or the one-line error naming the extra to install."""
    try:
        from ..contrib import prometheus as module
    except ImportError as exc:
        if exc.name is not None and exc.name.startswith("prometheus_client"):
            raise CommandError(MISSING) from exc
        raise
    return module


def record(app: Application) -> None:
    """Register the metrics plugin on ``app``'s hooks, like ``plugins=[...]`` would."""
    app.registry.hooks.add_plugin(prometheus().PrometheusMetrics(), "tinyq-prometheus")


def serve(port: int, registry: Any, host: str = DEFAULT_HOST) -> None:
    from prometheus_client import start_http_server
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        where = f"port {port}" if host == DEFAULT_HOST else f"{host} port {port}"
        raise CommandError(f"cannot serve metrics on {where}: {exc.strerror or exc} "
                           "(pick another --metrics-port or --metrics-host)") from exc
    logger.info("Serving Prometheus metrics on http://%s:%d/metrics", host, port)


def add_queue_sizes(app: Application, registry: Any) -> None:
    """The queue-size gauges, when the broker has the admin tier to count with."""
    broker = app.broker
    if isinstance(broker, BrokerAdmin):
        registry.register(prometheus().QueueSizeCollector(broker, app.known_queues))


def serve_worker(app: Application, port: int, host: str = DEFAULT_HOST) -> None:
    """``-p 1``: this worker records and serves its own metrics."""
    record(app)
    from prometheus_client import REGISTRY
    add_queue_sizes(app, REGISTRY)
    serve(port, REGISTRY, host)


@contextlib.contextmanager
def serve_supervisor(app: Application, port: int,
                     host: str = DEFAULT_HOST) -> Iterator[Callable[[int], None]]:
    """``-p N``: the aggregate of the children, served while the block runs; yields the
    callback to call with a child's pid once it exited."""
    prometheus()  # fail early, with the line saying what to install
    folder = tempfile.mkdtemp(prefix="tinyq-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # inherited by every child started from here on
    try:
        from prometheus_client import CollectorRegistry, multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        add_queue_sizes(app, registry)
        serve(port, registry, host)
        yield lambda pid: multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
