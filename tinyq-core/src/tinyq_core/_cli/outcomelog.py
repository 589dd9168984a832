"""The worker's log line for a job that ends without running to an outcome of its own: a
cancelled job (``tinyq_job_cancelled``) and an expired one (``tinyq_job_expired``). Every
other job's end is the runner's "Finish run job" line; both carry the same fields
(``outcome`` from the one vocabulary of _outcomes.py, shared with the metrics), so that a
search for ``outcome`` in a JSON log (``--log-format json``) sees every way a job ends."""

from __future__ import annotations

import logging
from typing import Any

from .._app import Application
from .._hooks import hookimpl
from .._outcomes import CANCELLED, EXPIRED
from .._types import Job

logger = logging.getLogger("tinyq.worker")


def fields(job: Job, outcome: str, **more: Any) -> dict[str, Any]:
    """The ``extra=`` of the line (as the runner's, without the delivery count the hooks do
    not give)."""
    return {"job_id": job.id, "task": job.task_name, "queue": job.queue,
            "retries": job.retries, "outcome": outcome, **more}


class OutcomeLog:
    """Logs at info level the ends the runner does not log."""

    @hookimpl
    def tinyq_job_cancelled(self, job: Job, started: bool) -> None:
        logger.info("Job %r %s", job, "cancelled while running" if started
                    else "cancelled before it ran", extra=fields(job, CANCELLED, started=started))

    @hookimpl
    def tinyq_job_expired(self, job: Job) -> None:
        logger.info("Job %r expired before it ran", job, extra=fields(job, EXPIRED))


def record(app: Application) -> None:
    """Add the plugin when its lines would show: with no hook implemented, the worker skips
    the outcome hooks of every job (a cost only ``-l info`` pays)."""
    if logger.isEnabledFor(logging.INFO):
        app.registry.hooks.add_plugin(OutcomeLog(), "tinyq-outcome-log")
