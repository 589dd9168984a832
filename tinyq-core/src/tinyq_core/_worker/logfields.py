"""The fields of a job's worker log lines (the runner's, the cancel watcher's, expiry's)."""

from __future__ import annotations

from typing import Any

from .held import Work


def job_fields(work: Work, **more: Any) -> dict[str, Any]:
    """The ``extra=`` of a job's log lines: fields a JSON log (``--log-format json``) shows
    apart, so that a log search finds every line of one job, task or queue. ``attempt`` is
    the delivery count, as ``current_job().attempt``; ``retries`` the retries made so far."""
    job = work.job
    return {"job_id": job.id, "task": job.task_name, "queue": job.queue,
            "attempt": work.delivery.attempts, "retries": job.retries, **more}
