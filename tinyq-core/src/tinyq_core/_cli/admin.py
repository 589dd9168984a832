"""The admin commands: ``tinyq info|job|dead|purge|send|schedules|dashboard``, each with
``-u``, ``-a``, ``-v`` and ``--json``. They print their output on stdout (one JSON document with
``--json``) and their errors and log lines on stderr."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .._app import Application
from .._broker_choice import DEFAULT_BROKER
from .._interfaces import BrokerAdmin
from . import dashboard
from .dead import DEAD_ACTIONS
from .info import run_info
from .jobs import find_job
from .loading import CommandError, admin_of, load_admin_app, setup_logging, wait_for_broker
from .output import confirm, print_out
from .schedules import run_schedules
from .send import send

COMMANDS = ("info", "job", "dead", "purge", "send", "schedules", "dashboard")
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

    info_cmd = commands.add_parser("info", parents=[common], help="queues and workers")
    info_cmd.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
                          help="redraw every SECONDS (default 2) until Ctrl+C")

    job_cmd = commands.add_parser("job", parents=[common], help="one job and its outcome")
    job_cmd.add_argument("id", metavar="ID")
    job_cmd.add_argument("--queue", help="the job's queue (default: look in every known queue)")

    dead_cmd = commands.add_parser("dead", help="dead letters: ls, show, requeue, purge")
    letters = dead_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls_cmd = letters.add_parser("ls", parents=[common], help="list the dead letters of QUEUE")
    ls_cmd.add_argument("queue", metavar="QUEUE")
    ls_cmd.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show_cmd = letters.add_parser("show", parents=[common], help="one dead letter in full")
    show_cmd.add_argument("queue", metavar="QUEUE")
    show_cmd.add_argument("id", metavar="ID")
    requeue_cmd = letters.add_parser("requeue", parents=[common],
                                     help="put dead letters back on their queue")
    requeue_cmd.add_argument("queue", metavar="QUEUE")
    requeue_cmd.add_argument("--id", dest="ids", action="extend", nargs="+", metavar="ID",
                             help="only these (default: all)")
    dead_purge_cmd = letters.add_parser("purge", parents=[common],
                                        help="delete the dead letters of QUEUE")
    dead_purge_cmd.add_argument("queue", metavar="QUEUE")
    dead_purge_cmd.add_argument("--id", dest="ids", action="extend", nargs="+", metavar="ID",
                                help="only these (default: all)")
    dead_purge_cmd.add_argument("--yes", action="store_true", help="do not ask")

    purge_cmd = commands.add_parser("purge", parents=[common],
                                    help="delete the waiting jobs of QUEUE")
    purge_cmd.add_argument("queue", metavar="QUEUE")
    purge_cmd.add_argument("--yes", action="store_true", help="do not ask")

    send_cmd = commands.add_parser("send", parents=[common], help="enqueue a job by task name")
    send_cmd.add_argument("task", metavar="TASK")
    send_cmd.add_argument("args_json", nargs="?", default="[]", metavar="ARGS_JSON",
                          help="the positional arguments, a JSON array (default: [])")
    send_cmd.add_argument("--kwargs", default="{}", metavar="JSON",
                          help="the keyword arguments, a JSON object")
    send_cmd.add_argument("--queue", help="the queue (default: the task's, else default)")
    send_cmd.add_argument("--wait", type=float, metavar="SECONDS",
                          help="wait up to SECONDS for the result and print it")
    commands.add_parser("schedules", parents=[common],
                        help="periodic schedules: next run, last tick")
    board_cmd = commands.add_parser("dashboard", parents=[common],
                                    help="serve the web dashboard")
    dashboard.add_arguments(board_cmd)
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
    if args.command == "schedules":
        return run_schedules(app, args)
    admin = admin_of(app, f"{args.command} {getattr(args, 'action', '')}".strip())
    if args.command == "dead":
        return DEAD_ACTIONS[args.action](app, admin, args)
    return COMMANDS_NEEDING_ADMIN[args.command](app, admin, args)


def info(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    if args.watch is not None and args.watch <= 0:
        raise CommandError("--watch takes a number of seconds above 0")
    return run_info(app, admin, args.json, args.watch)


def job(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    found = find_job(app, admin, args.id, [args.queue] if args.queue else app.queues())
    print_out(args.json, found.as_json(), found.text())
    return 0


def purge(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    waiting = admin.size(args.queue)
    if waiting and not confirm(f"Purge {waiting} waiting jobs from {args.queue}?",
                               f"purge {waiting} waiting jobs from {args.queue}", args.yes):
        print("Nothing purged.", file=sys.stderr)
        return 1
    purged = admin.purge(args.queue) if waiting else 0
    print_out(args.json, {"queue": args.queue, "purged": purged},
              f"Purged {purged} waiting jobs from {args.queue}.")
    return 0


COMMANDS_NEEDING_ADMIN = {"info": info, "job": job, "purge": purge,
                          "dashboard": dashboard.serve}
