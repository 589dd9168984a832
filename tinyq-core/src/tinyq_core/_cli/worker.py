"""``tinyq [worker flags]`` and ``tinyq worker [worker flags]``: run a worker."""

from __future__ import annotations

import argparse
import gc
import logging
import os
from collections.abc import Sequence

from .._app import Application
from .._supervisor import PARENT_ENV, PROCESSES_ENV, Supervisor, guard_os_exit, watch_parent
from .._version import __version__
from .._worker import DEFAULT_ASYNC_CONCURRENCY, DEFAULT_HEARTBEAT_INTERVAL
from . import metrics
from .loading import LEVELS, LOG_FORMATS, CommandError, describe_broker, load_app, wait_for_broker

logger = logging.getLogger("tinyq.runner")

ADMIN_EPILOG = """\
admin commands (each with its own --help):
  tinyq info     queues, their jobs, and the live workers
  tinyq job      one job: status, arguments, result or traceback
  tinyq dead     dead letters: ls, show, requeue, purge
  tinyq purge    delete the waiting jobs of a queue
  tinyq send     enqueue a job by task name
  tinyq schedules  periodic schedules: next run, last tick
"""

MEMORY_WARNING = ("a memory:// broker lives in this process only: producers in other "
                  "processes cannot reach it")


def build_parser(prog: str = "tinyq") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a tinyq worker.", epilog=ADMIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"tinyq {__version__}")
    parser.add_argument("-u", "--uri", help="broker URI; overrides the application's")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and tracebacks for errors")
    parser.add_argument("-w", "--worker-number", type=int, default=8, metavar="WORKER_NUMBER",
                        help="worker threads (default: 8)")
    parser.add_argument("--async-concurrency", type=int, default=DEFAULT_ASYNC_CONCURRENCY,
                        metavar="N", help="async jobs run at a time on the worker process's "
                        f"event loop, beside the -w threads (default: {DEFAULT_ASYNC_CONCURRENCY})")
    parser.add_argument("-a", "--app", default="app.app",
                        help="the Application, as module.attribute (default: app.app)")
    parser.add_argument("-l", "--log-level", default="warn", choices=list(LEVELS),
                        help="log level (default: warn)")
    parser.add_argument("--log-format", default="text", choices=list(LOG_FORMATS),
                        help="log lines as text, or one JSON object a line (default: text)")
    parser.add_argument("-p", "--processes", type=int, default=1,
                        help="worker processes, each with -w threads (default: 1)")
    parser.add_argument("-q", "--queue", action="append", dest="queues", metavar="QUEUE",
                        help="a queue to consume; repeat in priority order (default: default)")
    parser.add_argument("--burst", action="store_true",
                        help="exit once nothing is ready or running")
    parser.add_argument("--shutdown-timeout", type=float, metavar="SECONDS",
                        help="on a warm shutdown, wait at most this long for running jobs")
    parser.add_argument("--heartbeat-interval", type=float, metavar="SECONDS",
                        default=DEFAULT_HEARTBEAT_INTERVAL,
                        help="seconds between the worker's records in the worker registry "
                        f"(tinyq info); it is forgotten after three missed (default: "
                        f"{DEFAULT_HEARTBEAT_INTERVAL:g})")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="do not enqueue the application's periodic schedules (cron=, "
                        "every=) from this worker")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics "
                        "(needs tinyq-core[prometheus]); with -p N, of all processes")
    parser.add_argument("--metrics-host", default=metrics.DEFAULT_HOST, metavar="HOST",
                        help="the address --metrics-port listens on, like 127.0.0.1 "
                        f"(default: {metrics.DEFAULT_HOST}, every interface)")
    return parser


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.worker_number < 1:
        raise CommandError("-w must be at least 1")
    if args.async_concurrency < 1:
        raise CommandError("--async-concurrency must be at least 1")
    if args.processes < 1:
        raise CommandError("-p must be at least 1")
    if not args.heartbeat_interval > 0:
        raise CommandError("--heartbeat-interval must be more than 0 seconds")
    app = load_app(args.app)
    if args.uri:
        app.use_broker(args.uri)
    wait_for_broker(app)
    if args.processes > 1:
        return supervise(app, args, argv)
    if args.metrics_port is not None:
        if PARENT_ENV in os.environ and metrics.MULTIPROC_ENV in os.environ:
            metrics.record(app)  # a child of -p N: its supervisor serves the sum
        else:
            metrics.serve_worker(app, args.metrics_port, args.metrics_host)
    log_banner(app, args.queues or ["default"], args.worker_number,
               int(os.environ.get(PROCESSES_ENV, "1")))
    if app.schedule_registry:
        logger.info("Schedules: %s (%s)", ", ".join(s.name for s in app.schedule_registry),
                    "not run here: --no-scheduler" if args.no_scheduler else "run here")
    worker = app.worker(concurrency=args.worker_number, queues=args.queues,
                        shutdown_timeout=args.shutdown_timeout,
                        heartbeat_interval=args.heartbeat_interval,
                        scheduler=not args.no_scheduler,
                        async_concurrency=args.async_concurrency)
    worker.install_signal_handlers()
    watch_parent(worker.stop)
    guard_os_exit()
    # What startup made (the app, its imports) lives as long as the process: frozen, a full
    # collection skips it. Unfrozen, one took 20-30 ms while the first jobs ran, a stall of
    # every thread and of the event loop (docs/asyncio.md, loop lag).
    gc.freeze()
    try:
        return worker.run(burst=args.burst)
    finally:
        app.close()


def supervise(app: Application, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``-p N``: the children run the jobs; this parent keeps the app only to count the
    queues for ``--metrics-port``."""
    child_args = without_processes(argv)
    if args.metrics_port is None:
        app.close()
        return Supervisor(child_args, args.processes, burst=args.burst).run()
    try:
        with metrics.serve_supervisor(app, args.metrics_port, args.metrics_host) as on_exit:
            return Supervisor(child_args, args.processes, args.burst, on_exit).run()
    finally:
        app.close()


def log_banner(app: Application, queues: Sequence[str], threads: int, processes: int) -> None:
    """What this worker runs and where from, at info; a warning for a broker no other
    process can reach."""
    logger.info("Starting TinyQ worker, version %s...", __version__)
    logger.info("Broker: %s", describe_broker(app))
    logger.info("Queues (in priority order): %s", ", ".join(queues))
    logger.info("Concurrency: %d thread%s x %d process%s", threads, "s" if threads != 1 else "",
                processes, "es" if processes != 1 else "")
    logger.info("Tasks: %s", ", ".join(sorted(app.tasks)) or "none registered")
    if app.broker_uri.startswith("memory:"):
        logger.warning(MEMORY_WARNING)


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
