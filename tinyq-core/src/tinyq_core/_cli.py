"""The ``tinyq`` command: start a worker for an application.

Bad input (an app path that does not import, an unknown URI scheme, an unreachable broker)
ends with one line on stderr and exit status 1; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence

from ._app import Application
from ._backoff import Backoff
from ._errors import BrokerUnavailable, TinyqError
from ._supervisor import Supervisor, guard_os_exit, watch_parent
from ._uri import redact_uri
from ._version import __version__

logger = logging.getLogger("tinyq.runner")

LOG_FORMAT = (
    "%(asctime)s - %(levelname)s - %(name)s[line:%(lineno)d thread:%(threadName)s(%(thread)d) "
    "process:%(processName)s(%(process)d)] - %(message)s"
)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
CONNECT_ATTEMPTS = 5  # start-up retries for an unreachable broker, about 3 s in all
CONNECT_BACKOFF = Backoff(base=0.2, cap=1.6)


class CommandError(Exception):
    """One line for the user; the CLI prints it and exits 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyq", description="Run a tinyq worker.")
    parser.add_argument("-V", "--version", action="version", version=f"tinyq {__version__}")
    parser.add_argument("-u", "--uri", help="broker URI; overrides the application's")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and tracebacks for errors")
    parser.add_argument("-w", "--worker-number", type=int, default=8, metavar="WORKER_NUMBER",
                        help="worker threads (default: 8)")
    parser.add_argument("-a", "--app", default="app.app",
                        help="the Application, as module.attribute (default: app.app)")
    parser.add_argument("-l", "--log-level", default="warn", choices=list(LEVELS),
                        help="log level (default: warn)")
    parser.add_argument("-p", "--processes", type=int, default=1,
                        help="worker processes, each with -w threads (default: 1)")
    parser.add_argument("-q", "--queue", action="append", dest="queues", metavar="QUEUE",
                        help="a queue to consume; repeat in priority order (default: default)")
    parser.add_argument("--burst", action="store_true",
                        help="exit once nothing is ready or running")
    parser.add_argument("--shutdown-timeout", type=float, metavar="SECONDS",
                        help="on a warm shutdown, wait at most this long for running jobs")
    return parser


def setup_logging(level: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
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


def wait_for_broker(app: Application, uri: str) -> None:
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            app.broker.ping()
            return
        except BrokerUnavailable as exc:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise CommandError(
                    f"cannot reach the broker at {redact_uri(uri)}: {exc} "
                    "(is the server running? pass another URI with -u)"
                ) from exc
            delay = CONNECT_BACKOFF.delay(attempt)
            logger.warning("Broker not reachable yet, retrying in %.1fs: %s", delay, exc)
            time.sleep(delay)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.worker_number < 1:
        raise CommandError("-w must be at least 1")
    if args.processes < 1:
        raise CommandError("-p must be at least 1")
    app = load_app(args.app)
    if args.uri:
        app.use_broker(args.uri)
    uri = app.broker_uri or type(app.broker).__name__
    wait_for_broker(app, uri)
    if args.processes > 1:
        app.close()
        return Supervisor(without_processes(argv), args.processes, burst=args.burst).run()
    logger.warning("Starting TinyQ worker, version %s...", __version__)
    worker = app.worker(concurrency=args.worker_number, queues=args.queues,
                        shutdown_timeout=args.shutdown_timeout)
    worker.install_signal_handlers()
    watch_parent(worker.stop)
    guard_os_exit()
    try:
        return worker.run(burst=args.burst)
    finally:
        app.close()


def without_processes(argv: Sequence[str]) -> list[str]:
    """The command line for a child: the same, without -p/--processes."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "-p" or (arg.startswith("--p") and "=" not in arg):
            skip = True  # "-p 2", "--processes 2" or an abbreviation like "--proc 2"
        elif not (arg.startswith("-p") or arg.startswith("--p")):
            out.append(arg)  # drops "-p2" and "--processes=2"
    return out


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else LEVELS[args.log_level])
    try:
        code = run(args, argv)
    except (CommandError, TinyqError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"tinyq: error: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
