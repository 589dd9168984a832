"""What the pages show, read from the broker: the same numbers and job reports as the admin
commands (``tinyq info``, ``tinyq job``, ``tinyq dead``), never computed twice."""

from __future__ import annotations

import time
from typing import Any

import attrs

from .._app import Application
from .._cli.info import QueueStats, queue_stats
from .._cli.jobs import JobReport, find_job
from .._cli.loading import CommandError
from .._cli.output import age, pretty, since
from .._errors import BadMessage, ConfigurationError
from .._interfaces import BrokerAdmin
from .._types import DeadLetter, Message, WorkerInfo

PAGE_SIZE = 50  # waiting jobs per page of a queue
DEAD_PAGE = 100  # dead letters listed per queue
RECENT_SCAN = 500  # dead letters read per queue to find the latest failures
RECENT_SHOWN = 10


@attrs.frozen
class JobRow:
    """One line of a list of jobs: the message, and its decoded job when readable."""

    id: str
    queue: str
    task: str
    args: str
    when: str  # enqueued (waiting jobs) or failed (dead letters), "how long ago"
    due: str = ""
    reason: str = ""
    error: str = ""


def workers_of(app: Application) -> list[WorkerInfo] | None:
    """The live workers; None when the broker keeps no worker registry."""
    try:
        return app.workers()
    except ConfigurationError:
        return None


def overview(app: Application, admin: BrokerAdmin) -> dict[str, Any]:
    now = time.time()
    stats: list[QueueStats] = [queue_stats(app, admin, q, now) for q in app.queues()]
    return {"queues": stats, "workers": workers_of(app), "failures": recent_failures(app, admin)}


def stats(app: Application, admin: BrokerAdmin, queue: str) -> QueueStats:
    return queue_stats(app, admin, queue, time.time())


def arguments(job_args: Any, kwargs: dict[str, Any]) -> str:
    """Arguments in one short line, as JSON where they can be (text: escaped when rendered)."""
    parts = [pretty(a) for a in job_args] + [f"{k}={pretty(v)}" for k, v in kwargs.items()]
    line = ", ".join(parts)
    return line if len(line) <= 120 else line[:119] + "…"


def message_row(app: Application, message: Message, now: float) -> JobRow:
    try:
        job = app.codec.decode_job(message.body, message.queue, message.id)
    except BadMessage as exc:
        return JobRow(message.id, message.queue, "(unreadable)", exc.reason, "")
    due = f"in {age(message.due - now)}" if message.due and message.due > now else ""
    return JobRow(message.id, message.queue, job.task_name, arguments(job.args, job.kwargs),
                  f"{age(since(job.enqueued_at, now))} ago", due)


def dead_row(app: Application, letter: DeadLetter, now: float) -> JobRow:
    row = message_row(app, letter.message, now)
    return attrs.evolve(row, when=f"{age(now - letter.failed_at)} ago", due="",
                        reason=letter.reason, error=letter.error[:200])


def waiting_page(app: Application, admin: BrokerAdmin, queue: str, page: int) -> list[JobRow]:
    now = time.time()
    return [message_row(app, m, now)
            for m in admin.messages(queue, page * PAGE_SIZE, PAGE_SIZE)]


def dead_page(app: Application, admin: BrokerAdmin, queue: str) -> list[JobRow]:
    now = time.time()
    return [dead_row(app, d, now) for d in admin.dead_letters(queue, DEAD_PAGE)]


def recent_failures(app: Application, admin: BrokerAdmin) -> list[JobRow]:
    """The latest dead letters of every queue, newest first (from a bounded read of each)."""
    letters = [d for q in app.queues() for d in admin.dead_letters(q, RECENT_SCAN)]
    letters.sort(key=lambda d: d.failed_at, reverse=True)
    now = time.time()
    return [dead_row(app, d, now) for d in letters[:RECENT_SHOWN]]


def running_on(app: Application, job_id: str) -> tuple[str, float] | None:
    """(worker id, seconds running) of the live worker running ``job_id`` now, if any."""
    now = time.time()
    for worker in workers_of(app) or ():
        for job in worker.jobs:
            if job.id == job_id:
                return worker.id, now - job.started_at
    return None


def job_report(app: Application, admin: BrokerAdmin, job_id: str,
               queue: str | None) -> JobReport | None:
    """``tinyq job``'s report of ``job_id``; None when nothing is known of it."""
    try:
        return find_job(app, admin, job_id, [queue] if queue else app.queues())
    except CommandError:
        return None


__all__ = ["JobRow", "dead_page", "job_report", "overview", "running_on", "stats",
           "waiting_page", "workers_of"]
