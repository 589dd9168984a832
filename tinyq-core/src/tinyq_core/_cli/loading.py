"""What every ``tinyq`` command needs: logging, the application, the broker and its tiers."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from pathlib import Path

from .._app import Application
from .._backoff import Backoff
from .._errors import BrokerUnavailable
from .._interfaces import BrokerAdmin
from .._uri import redact_uri
from .jsonlog import JsonFormatter

logger = logging.getLogger("tinyq.runner")

LOG_FORMAT = (
    "%(asctime)s - %(levelname)s - %(name)s[line:%(lineno)d thread:%(threadName)s(%(thread)d) "
    "process:%(processName)s(%(process)d)] - %(message)s"
)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
LOG_FORMATS = ("text", "json")
CONNECT_ATTEMPTS = 5  # start-up retries for an unreachable broker, about 3 s in all
CONNECT_BACKOFF = Backoff(base=0.2, cap=1.6)
DEFAULT_APP = "app.app"


class CommandError(Exception):
    """One line for the user; the CLI prints it and exits 1."""


def setup_logging(level: int, log_format: str = "text") -> None:
    """Log lines to stderr, so that stdout holds only a command's output (``--json``); as
    text, or with ``log_format="json"`` one JSON object a line."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def load_app(path: str) -> Application:
    """Import ``module.attribute`` (or ``module:attribute``) from the current directory."""
    module_name, sep, attribute = path.replace(":", ".").rpartition(".")
    if not sep or not module_name or not attribute:
        raise CommandError(f"-a {path!r} is not of the form module.attribute (like app.app)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise CommandError(
                f"cannot import {module_name!r} for -a {path}: no module named {exc.name!r} "
                f"(run tinyq from the folder holding it, or pass -a module.attribute)"
            ) from exc
        raise CommandError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise CommandError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise CommandError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(app, Application):
        raise CommandError(
            f"{path} is a {type(app).__name__}, not a tinyq Application "
            f"(define app = Application(...) in {module_name})"
        )
    return app


def load_admin_app(path: str | None, uri: str | None) -> Application:
    """The application an admin command works with: ``-a`` when given; else ``app.app`` when
    the current directory holds an ``app.py`` (or an ``app`` package), else a bare
    ``Application()`` (``$TINYQ_URL``, else the default SQLite file). Then ``-u``.

    Only a file in this directory counts, so an unrelated installed module named ``app`` is
    never imported; a local ``app.py`` that fails to import is an error, not a fallback: its
    serializer and secret key may be needed to read the jobs."""
    if path is None:
        here = Path.cwd()
        local = (here / "app.py").is_file() or (here / "app" / "__init__.py").is_file()
        app = load_app(DEFAULT_APP) if local else Application()
    else:
        app = load_app(path)
    if uri:
        app.use_broker(uri)
    return app


def describe_broker(app: Application) -> str:
    """The broker's URI with passwords hidden, or its class name when given as an object."""
    return redact_uri(app.broker_uri) if app.broker_uri else type(app.broker).__name__


def wait_for_broker(app: Application, attempts: int = CONNECT_ATTEMPTS) -> None:
    """Ping the broker, retrying a few times with backoff (a server still starting)."""
    for attempt in range(attempts):
        try:
            app.broker.ping()
            return
        except BrokerUnavailable as exc:
            if attempt == attempts - 1:
                raise CommandError(
                    f"cannot reach the broker at {describe_broker(app)}: {exc} "
                    "(is the server running? pass another URI with -u)"
                ) from exc
            delay = CONNECT_BACKOFF.delay(attempt)
            logger.warning("Broker not reachable yet, retrying in %.1fs: %s", delay, exc)
            time.sleep(delay)


def admin_of(app: Application, command: str) -> BrokerAdmin:
    """The broker's admin tier, or the one-line error saying the broker has none."""
    broker = app.broker
    if not isinstance(broker, BrokerAdmin):
        where = f" at {redact_uri(app.broker_uri)}" if app.broker_uri else ""
        raise CommandError(f"tinyq {command} needs a broker with the admin tier; "
                           f"{type(broker).__name__}{where} has none")
    return broker
