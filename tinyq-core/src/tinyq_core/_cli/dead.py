"""``tinyq dead ls|show|requeue|purge QUEUE``: the dead letters of a queue."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .._app import Application
from .._interfaces import BrokerAdmin
from .info import counts_of
from .jobs import find_dead, report
from .output import age, confirm, print_out, since, table

COUNT_LIMIT = 200  # dead letters read to ask about, from a broker that cannot count them


def dead_ls(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    letters = admin.dead_letters(args.queue, args.limit)
    reports = [report(app, admin, d.message.id, args.queue, None, d) for d in letters]
    rows = [[d.message.id, r.job.task_name if r is not None and r.job is not None else None,
             d.attempts, f"{age(since(d.failed_at))} ago", d.reason, d.error[:60]]
            for d, r in zip(letters, reports, strict=True)]
    print_out(args.json, [r.as_json() for r in reports if r is not None],
              table(["ID", "TASK", "ATTEMPTS", "FAILED", "REASON", "ERROR"], rows)
              if rows else f"No dead letters in {args.queue}.")
    return 0


def dead_show(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    found = find_dead(app, admin, args.queue, args.id)
    print_out(args.json, found.as_json(), found.text())
    return 0


def dead_requeue(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    """All of the queue's dead letters, or those of ``--id``: exit 1 when one was not there."""
    requeued = admin.requeue_dead_letters(args.queue, args.ids)
    print_out(args.json, {"queue": args.queue, "requeued": requeued},
              f"Requeued {requeued} dead letters of {args.queue}.")
    missing = len(set(args.ids or ())) - requeued
    if args.ids and missing > 0:
        print(f"tinyq: {missing} of the given ids are not dead letters of {args.queue}",
              file=sys.stderr)
        return 1
    return 0


def dead_purge(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    if args.ids:
        return dead_purge_some(admin, args)
    counts = counts_of(admin, args.queue)  # for the question only
    count = counts.dead if counts else len(admin.dead_letters(args.queue, COUNT_LIMIT + 1))
    shown = f"{COUNT_LIMIT}+" if counts is None and count > COUNT_LIMIT else str(count)
    if count and not confirm(f"Delete {shown} dead letters of {args.queue}?",
                             f"delete {shown} dead letters of {args.queue}", args.yes):
        print("Nothing deleted.", file=sys.stderr)
        return 1
    deleted = admin.purge_dead_letters(args.queue) if count else 0
    print_out(args.json, {"queue": args.queue, "deleted": deleted},
              f"Deleted {deleted} dead letters of {args.queue}.")
    return 0


def dead_purge_some(admin: BrokerAdmin, args: argparse.Namespace) -> int:
    """The dead letters of ``--id``: exit 1 when one was not there."""
    wanted = sorted(set(args.ids))
    if not confirm(f"Delete {len(wanted)} dead letter(s) of {args.queue}?",
                   f"delete {len(wanted)} dead letter(s) of {args.queue}", args.yes):
        print("Nothing deleted.", file=sys.stderr)
        return 1
    deleted = admin.purge_dead_letters(args.queue, wanted)
    print_out(args.json, {"queue": args.queue, "deleted": deleted},
              f"Deleted {deleted} dead letters of {args.queue}.")
    if deleted < len(wanted):
        print(f"tinyq: {len(wanted) - deleted} of the given ids are not dead letters of "
              f"{args.queue}", file=sys.stderr)
        return 1
    return 0


DEAD_ACTIONS: dict[str, Callable[[Application, BrokerAdmin, argparse.Namespace], int]] = {
    "ls": dead_ls, "show": dead_show, "requeue": dead_requeue, "purge": dead_purge,
}
