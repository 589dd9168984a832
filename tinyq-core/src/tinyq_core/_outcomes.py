"""The words for how a job's run (or a job) ended: one vocabulary for the worker's log lines
(``outcome`` of ``--log-format json``), the Prometheus ``outcome`` label and the tracing
``tinyq.job.outcome`` attribute, so that a dashboard, a log search and a trace agree.

Each word matches a lifecycle hook (docs/hooks.md): ``timed_out`` is ``tinyq_job_timed_out``
and so on. A log line says one word per run; the metrics count each hook called, so a run
that timed out counts ``timed_out`` and then ``retried`` or ``failed``.
"""

from __future__ import annotations

from typing import Final

SUCCEEDED: Final = "succeeded"
RETRIED: Final = "retried"
FAILED: Final = "failed"
TIMED_OUT: Final = "timed_out"
DEAD_LETTERED: Final = "dead_lettered"
CANCELLED: Final = "cancelled"
EXPIRED: Final = "expired"

OUTCOMES: Final = (SUCCEEDED, RETRIED, FAILED, TIMED_OUT, DEAD_LETTERED, CANCELLED, EXPIRED)
