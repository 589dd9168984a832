"""The admin commands: ``tinyq info|job|dead|purge|send``, each with ``-u``, ``-a``, ``-v`` and
``--json``. They print their output on stdout (one JSON document with ``--json``) and their
errors and log lines on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._app import DEFAULT_BROKER, Application
from .._errors import JobFailed
from .._task import new_job_id
from .._types import Job
from .info import COUNT_LIMIT, run_info
from .jobs import find_dead, find_job, report
from .loading import CommandError, admin_of, load_admin_app, setup_logging, wait_for_broker
from .output import age, confirm, emit_json, pretty, since, table

COMMANDS = ("info", "job", "dead", "purge", "send")
DEFAULT_FILE = DEFAULT_BROKER.removeprefix("sqlite:///")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-u", "--uri", help="broker URI; overrides the application's")
    common.add_argument("-a", "--app", help="the Application, as module.attribute (default: "
                        "app.app when ./app.py exists, else Application())")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and tracebacks for errors")
    common.add_argument("--json", action="store_true", help="print one JSON document")
    parser = argparse.ArgumentParser(prog="tinyq", description="tinyq admin commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", parents=[common], help="queues and workers")
    info.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
                      help="redraw every SECONDS (default 2) until Ctrl+C")

    job = commands.add_parser("job", parents=[common], help="one job and its outcome")
    job.add_argument("id", metavar="ID")
    job.add_argument("--queue", help="the job's queue (default: look in every known queue)")

    dead = commands.add_parser("dead", help="dead letters: ls, show, requeue, purge")
    letters = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = letters.add_parser("ls", parents=[common], help="list the dead letters of QUEUE")
    ls.add_argument("queue", metavar="QUEUE")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show = letters.add_parser("show", parents=[common], help="one dead letter in full")
    show.add_argument("queue", metavar="QUEUE")
    show.add_argument("id", metavar="ID")
    requeue = letters.add_parser("requeue", parents=[common],
                                 help="put dead letters back on their queue")
    requeue.add_argument("queue", metavar="QUEUE")
    requeue.add_argument("--id", dest="ids", action="extend", nargs="+", metavar="ID",
                         help="only these (default: all)")
    dead_purge = letters.add_parser("purge", parents=[common],
                                    help="delete the dead letters of QUEUE")
    dead_purge.add_argument("queue", metavar="QUEUE")
    dead_purge.add_argument("--yes", action="store_true", help="do not ask")

    purge = commands.add_parser("purge", parents=[common],
                                help="delete the waiting jobs of QUEUE")
    purge.add_argument("queue", metavar="QUEUE")
    purge.add_argument("--yes", action="store_true", help="do not ask")

    send = commands.add_parser("send", parents=[common], help="enqueue a job by task name")
    send.add_argument("task", metavar="TASK")
    send.add_argument("args_json", nargs="?", default="[]", metavar="ARGS_JSON",
                      help="the positional arguments, a JSON array (default: [])")
    send.add_argument("--kwargs", default="{}", metavar="JSON",
                      help="the keyword arguments, a JSON object")
    send.add_argument("--queue", help="the queue (default: the task's, else default)")
    send.add_argument("--wait", type=float, metavar="SECONDS",
                      help="wait up to SECONDS for the result and print it")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run an admin command; its exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING)
    app = load_admin_app(args.app, args.uri)
    try:
        if args.command != "send":
            check_default_file(app)
        wait_for_broker(app, attempts=1)
        return run(app, args)
    finally:
        app.close()


def check_default_file(app: Application) -> None:
    """Looking at the default SQLite file where there is none is running in the wrong folder:
    say so, rather than create an empty file and report empty queues."""
    if app.broker_uri == DEFAULT_BROKER and not Path(DEFAULT_FILE).exists():
        raise CommandError(f"no {DEFAULT_FILE} here, the default broker's file: run tinyq from "
                           "your application's folder, pass -u URI, or set $TINYQ_URL")


def run(app: Application, args: argparse.Namespace) -> int:
    if args.command == "send":
        return send(app, args)
    admin = admin_of(app, f"{args.command} {getattr(args, 'action', '')}".strip())
    if args.command == "info":
        if args.watch is not None and args.watch <= 0:
            raise CommandError("--watch takes a number of seconds above 0")
        return run_info(app, admin, args.json, args.watch)
    if args.command == "job":
        found = find_job(app, admin, args.id, [args.queue] if args.queue else app.queues())
        print_out(args, found.as_json(), found.text())
        return 0
    if args.command == "purge":
        waiting = admin.size(args.queue)
        if waiting and not confirm(f"Purge {waiting} waiting jobs from {args.queue}?",
                                   f"purge {waiting} waiting jobs from {args.queue}", args.yes):
            print("Nothing purged.", file=sys.stderr)
            return 1
        purged = admin.purge(args.queue) if waiting else 0
        print_out(args, {"queue": args.queue, "purged": purged},
                  f"Purged {purged} waiting jobs from {args.queue}.")
        return 0
    if args.action == "ls":
        letters = admin.dead_letters(args.queue, args.limit)
        rows = [[d.message.id, task_name(app, d.message.body, args.queue, d.message.id),
                 d.attempts, f"{age(since(d.failed_at))} ago", d.reason, d.error[:60]]
                for d in letters]
        reports = [report(app, admin, d.message.id, args.queue, None, d) for d in letters]
        print_out(args, [r.as_json() for r in reports if r is not None],
                  table(["ID", "TASK", "ATTEMPTS", "FAILED", "REASON", "ERROR"], rows)
                  if rows else f"No dead letters in {args.queue}.")
        return 0
    if args.action == "show":
        found = find_dead(app, admin, args.queue, args.id)
        print_out(args, found.as_json(), found.text())
        return 0
    if args.action == "requeue":
        requeued = admin.requeue_dead_letters(args.queue, args.ids)
        print_out(args, {"queue": args.queue, "requeued": requeued},
                  f"Requeued {requeued} dead letters of {args.queue}.")
        missing = len(set(args.ids or ())) - requeued
        if args.ids and missing > 0:
            print(f"tinyq: {missing} of the given ids are not dead letters of {args.queue}",
                  file=sys.stderr)
            return 1
        return 0
    # dead purge
    count = len(admin.dead_letters(args.queue, COUNT_LIMIT + 1))
    shown = f"{COUNT_LIMIT}+" if count > COUNT_LIMIT else str(count)
    if count and not confirm(f"Delete {shown} dead letters of {args.queue}?",
                             f"delete {shown} dead letters of {args.queue}", args.yes):
        print("Nothing deleted.", file=sys.stderr)
        return 1
    deleted = admin.purge_dead_letters(args.queue) if count else 0
    print_out(args, {"queue": args.queue, "deleted": deleted},
              f"Deleted {deleted} dead letters of {args.queue}.")
    return 0


def print_out(args: argparse.Namespace, document: Any, text: str) -> None:
    if args.json:
        emit_json(document)
    else:
        print(text)


def task_name(app: Application, body: bytes, queue: str, job_id: str) -> str:
    try:
        return app.codec.decode_job(body, queue, job_id).task_name
    except Exception:  # an unreadable message: its reason is in the dead letter
        return "-"


def parse_json(text: str, what: str, kind: type, example: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{what} is not valid JSON ({exc}); pass {example}") from None
    if not isinstance(value, kind):
        raise CommandError(f"{what} must be {example}, not {type(value).__name__} {text!r}")
    return value


def send(app: Application, args: argparse.Namespace) -> int:
    values = parse_json(args.args_json, "ARGS_JSON", list, "a JSON array, like '[1, 2]'")
    kwargs = parse_json(args.kwargs, "--kwargs", dict, "a JSON object, like '{\"n\": 2}'")
    task = app.tasks.get(args.task)
    if task is None and app.tasks:
        print(f"tinyq: note: no task {args.task!r} on this application; sending it anyway "
              "(a worker that has it will run it)", file=sys.stderr)
    queue = args.queue or (task.options.queue if task is not None else "default")
    job = Job(id=new_job_id(), task_name=args.task, args=tuple(values), kwargs=kwargs,
              queue=queue)
    # The producer, not app.send: app.send picks the queue itself and takes no --queue.
    handle = app._producer.enqueue([job])[0]
    document: dict[str, Any] = {"id": job.id, "task": job.task_name, "queue": queue}
    if args.wait is None:
        print_out(args, document, job.id)
        return 0
    if not args.json:
        print(job.id, flush=True)
    try:
        value = handle.result(timeout=args.wait)
    except TimeoutError:
        raise CommandError(f"job {job.id} did not finish within {args.wait:g}s; it is still "
                           f"queued or running (see tinyq job {job.id})") from None
    except JobFailed as exc:
        document.update(status="failed", error=str(exc), traceback=exc.traceback)
        if args.json:
            emit_json(document)
        else:
            print(exc.traceback.rstrip("\n") or str(exc), file=sys.stderr)
            print(f"tinyq: error: job {job.id} failed: {exc}", file=sys.stderr)
        return 1
    document.update(status="succeeded", result=value)
    print_out(args, document, pretty(value))
    return 0
