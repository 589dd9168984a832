"""Job expiry: a job whose ``expires`` time passed before a worker started it is not run.
It is acknowledged with the "expired" outcome, logged once at WARNING and counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .._codec import Codec, Outcome
from .held import Work
from .logfields import job_fields
from .policy import AckJob

logger = logging.getLogger("tinyq.worker")


def broker_clock(broker: Any) -> Callable[[], float]:
    """The broker's clock (Unix time), which decides expiry as it decides due times: a
    broker with a ``clock`` (the memory broker's, a FakeClock in tests) is asked; any other
    runs on the real time."""
    clock = getattr(broker, "clock", None)
    now = getattr(clock, "time", None)
    return now if callable(now) else time.time


def expired_settlement(work: Work, codec: Codec, now: float) -> AckJob:
    """Acknowledge ``work`` with the "expired" outcome, and say so once."""
    job = work.job
    assert job.expires is not None
    late = now - job.expires
    stamp = datetime.fromtimestamp(job.expires, timezone.utc).isoformat(timespec="seconds")
    logger.warning("Job %r (task %s) expired: not started by %s, reached a worker %.1fs "
                   "late; not run", job, job.task_name, stamp, late,
                   extra=job_fields(work, outcome="expired"))
    outcome = Outcome.expired(f"not started by its expiry time {stamp} ({late:.1f}s late)")
    return AckJob(work.delivery, codec.encode_result(job.id, job.queue, outcome),
                  kind="expired")
