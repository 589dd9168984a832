"""``tinyq job ID`` and ``tinyq dead show``: one job, from what the broker still holds of it
(its message while it waits or runs, its dead letter, its stored result)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from .._app import Application
from .._codec import Outcome
from .._errors import BadMessage, ConfigurationError
from .._interfaces import BrokerAdmin
from .._types import DeadLetter, Delivery, Job, Message
from .loading import CommandError
from .output import pretty, timestamp

DEAD_SEARCH_LIMIT = 1000  # dead letters looked through for a job id, oldest first


@attrs.frozen
class JobReport:
    id: str
    queue: str
    status: str
    job: Job | None  # None: no message left to read it from, or an unreadable one
    unreadable: str = ""  # why the message could not be decoded
    attempts: int = 0
    outcome: Outcome | None = None
    dead: DeadLetter | None = None
    progress: Any = None  # the latest set_progress() of a running job

    def as_json(self) -> dict[str, Any]:
        job, outcome, dead = self.job, self.outcome, self.dead
        return {
            "id": self.id, "queue": self.queue, "status": self.status,
            "task": job.task_name if job else None,
            "args": list(job.args) if job else None,
            "kwargs": job.kwargs if job else None,
            "attempts": self.attempts, "retries": job.retries if job else None,
            "enqueued_at": job.enqueued_at if job else None,
            "due": job.eta if job else None,
            "progress": self.progress,
            "unreadable": self.unreadable or None,
            "result": outcome.value if outcome and outcome.ok else None,
            "error": outcome.error if outcome and not outcome.ok else None,
            "error_type": outcome.type if outcome and not outcome.ok else None,
            "traceback": outcome.traceback if outcome and not outcome.ok else None,
            "dead_letter": None if dead is None else {
                "reason": dead.reason, "error": dead.error, "attempts": dead.attempts,
                "failed_at": dead.failed_at,
            },
        }

    def fields(self) -> list[tuple[str, str]]:
        """What is known of the job as (name, value) rows, for ``tinyq job`` and the
        dashboard; the traceback is apart (``traceback``)."""
        job, outcome, dead = self.job, self.outcome, self.dead
        rows: list[tuple[str, str]] = [("job", self.id), ("status", self.status),
                                       ("queue", self.queue)]
        if job is not None:
            rows += [("task", job.task_name), ("args", pretty(list(job.args))),
                     ("kwargs", pretty(job.kwargs)),
                     ("attempts", f"{self.attempts} (retries made: {job.retries})"),
                     ("enqueued", timestamp(job.enqueued_at))]
            if job.eta is not None:
                rows.append(("due", timestamp(job.eta)))
            if self.progress is not None:
                rows.append(("progress", pretty(self.progress)))
        elif self.unreadable:
            rows.append(("message", f"unreadable: {self.unreadable}"))
        if dead is not None:
            rows.append(("dead", f"{dead.reason}, at {timestamp(dead.failed_at)}"))
            if dead.error and (outcome is None or outcome.ok):
                rows.append(("error", dead.error))
        if outcome is not None and outcome.ok:
            rows.append(("result", pretty(outcome.value)))
        elif outcome is not None:
            rows.append(("error", outcome.error))
        return rows

    @property
    def traceback(self) -> str:
        outcome = self.outcome
        return outcome.traceback if outcome is not None and not outcome.ok else ""

    def text(self) -> str:
        rows = self.fields()
        width = max(len(name) for name, _ in rows)
        text = "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
        if self.traceback:
            text += "\n\n" + self.traceback.rstrip("\n")
        return text


def find_dead_letter(admin: BrokerAdmin, queue: str, job_id: str) -> DeadLetter | None:
    for letter in admin.dead_letters(queue, DEAD_SEARCH_LIMIT):
        if letter.message.id == job_id:
            return letter
    return None


def report(
    app: Application, admin: BrokerAdmin, job_id: str, queue: str,
    delivery: Delivery | None, dead: DeadLetter | None,
) -> JobReport | None:
    """What is known of ``job_id`` in ``queue``; None when nothing is."""
    stored = app.results.get(job_id, 0, queue)
    outcome = None if stored is None else app.codec.decode_result(stored.body, job_id)
    if delivery is None and dead is None and outcome is None:
        return None
    if outcome is not None:
        status = "succeeded" if outcome.ok else "failed"
    elif delivery is not None:
        status = admin.status(job_id, queue)
    else:
        status = "failed"  # a dead letter whose stored failure expired
    message: Message | None = delivery.message if delivery else dead.message if dead else None
    job, unreadable = None, ""
    if message is not None:
        try:
            job = app.codec.decode_job(message.body, queue, job_id)
        except BadMessage as exc:
            unreadable = exc.reason
    attempts = delivery.attempts if delivery else dead.attempts if dead else 0
    progress = running_progress(app, job_id, queue) if status == "started" else None
    return JobReport(job_id, queue, status, job, unreadable, attempts, outcome, dead, progress)


def running_progress(app: Application, job_id: str, queue: str) -> Any:
    """What a running job last said of its progress; None when nothing (or its backend keeps
    none, or it cannot be read: a report is no place to fail)."""
    try:
        return app.job(job_id, queue).progress()
    except (ConfigurationError, BadMessage):
        return None


def find_job(app: Application, admin: BrokerAdmin, job_id: str,
             queues: Sequence[str]) -> JobReport:
    for queue in queues:
        try:
            delivery = admin.message(job_id, queue)
        except NotImplementedError:
            raise CommandError(f"tinyq job needs a broker that can look up messages; "
                               f"{type(admin).__name__} cannot") from None
        dead = None if delivery is not None else find_dead_letter(admin, queue, job_id)
        found = report(app, admin, job_id, queue, delivery, dead)
        if found is not None:
            return found
    names = ", ".join(queues) or "none"
    raise CommandError(f"no job {job_id} in queue(s) {names} (a finished job is known while "
                       "its result is stored; pass --queue if it went to another queue)")


def find_dead(app: Application, admin: BrokerAdmin, queue: str, job_id: str) -> JobReport:
    dead = find_dead_letter(admin, queue, job_id)
    found = report(app, admin, job_id, queue, None, dead) if dead is not None else None
    if found is None:
        raise CommandError(f"no dead letter {job_id} in queue {queue!r} "
                           f"(see tinyq dead ls {queue})")
    return found
