"""Cancelling a job from the producer side: ``h.cancel()`` and ``app.cancel(job_id)``.

The broker does the deciding in one atomic step (:class:`CancelRequests`): a waiting or
delayed job is deleted there and then, a leased one is flagged for the worker holding it,
which asks for its jobs' flags about once a second (_worker/cancels.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from ._codec import Outcome
from ._control_interfaces import CancelRequests
from ._errors import ConfigurationError
from ._types import Result

if TYPE_CHECKING:
    from ._producer import Producer

logger = logging.getLogger("tinyq")

# What ``cancel()`` did: "cancelled" (it was waiting: removed, it never runs), "cancelling"
# (it is running: asked to stop), "finished" (it has an outcome already, which stands),
# "unknown" (no such job in the queue, or its result expired).
CancelOutcome = Literal["cancelled", "cancelling", "finished", "unknown"]

# Seconds a cancel request of a running job is kept at least: it must outlive the job's run
# and a redelivery after its worker died; the worker deletes it once it settled the job.
MIN_REQUEST_TTL = 3600.0


def cancel_job(
    producer: Producer, job_id: str, queue: str | None, grace: float | None
) -> CancelOutcome:
    """Cancel job ``job_id`` of ``queue`` (None: looked for in the known queues)."""
    broker = cancelling_broker(producer, grace)
    if queue is None:
        queue = producer.find_queue(job_id)
        if queue is None:
            return "unknown"
    if producer.outcome(job_id, 0, queue) is not None:
        return finished(job_id)
    result = cancelled_result(producer, job_id, queue)
    own_results = producer.backends.explicit_results is None
    ttl = producer.result_ttl
    state = broker.cancel(job_id, queue, grace=grace, ttl=max(ttl, MIN_REQUEST_TTL),
                          result=result if own_results else None, result_ttl=ttl)
    if state == "removed":
        if not own_results:
            producer.backends.results.store([result], ttl)
        return "cancelled"
    if state == "flagged":
        return "cancelling"
    # Neither waiting nor leased: it may have finished between the two looks.
    return finished(job_id) if producer.outcome(job_id, 0, queue) is not None else "unknown"


def cancelling_broker(producer: Producer, grace: float | None) -> CancelRequests:
    """The producer's broker, if it can cancel and ``grace`` is valid (else the error)."""
    broker = producer.backends.broker
    if not isinstance(broker, CancelRequests):
        raise ConfigurationError(
            f"the broker {type(broker).__name__} cannot cancel jobs (it does not offer the "
            "CancelRequests tier); use a broker that can (redis, sqlite, memory)")
    if grace is not None and not grace >= 0:
        raise ValueError(f"grace must be a number of seconds (0 or more), not {grace!r}")
    return broker


def cancelled_result(producer: Producer, job_id: str, queue: str) -> Result:
    """The "cancelled" outcome a waiting job gets when the cancel removes it."""
    return producer.codec.encode_result(
        job_id, queue, Outcome.cancelled("cancelled before it started"))


def finished(job_id: str) -> CancelOutcome:
    logger.info("Job %s has finished already: cancel() changes nothing, its outcome "
                "stands", job_id)
    return "finished"
