"""OpenTelemetry tracing for tinyq (``pip install 'tinyq-core[otel]'``).

A plugin on the public job lifecycle hooks: ``Application(plugins=[OpenTelemetryPlugin()])``
in the producers and the workers. The producer makes a ``send <queue>`` PRODUCER span per job
and puts its context in the job's headers (the global propagator: W3C ``traceparent`` unless
configured otherwise); the worker makes a ``process <queue>`` CONSUMER span per run, the child
of that context, or with ``link=True`` the root of a new trace linked to it. Names and
attributes follow the OpenTelemetry messaging conventions (see docs/observability.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Generator
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from .. import current_job
from .._outcomes import CANCELLED, DEAD_LETTERED, EXPIRED, FAILED, RETRIED, SUCCEEDED
from .._version import __version__
from ..plugin import Delivery, Job, hookimpl

__all__ = ["OpenTelemetryPlugin"]

SYSTEM = "tinyq"
# Spans waiting for their other end (an outcome hook, or the wrapper's exit) at most: a
# bound on memory should a hook never come; the oldest is then ended as it is.
MAX_OPEN = 10_000


def _attributes(job: Job, operation: str, operation_type: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation_type,
        "messaging.destination.name": job.queue,
        "messaging.message.id": job.id,
        "tinyq.task.name": job.task_name,
    }


class _Run:
    """A process span and which of its two ends came: the wrapper's exit (the task's end) and
    the outcome hook (how the run was settled). The second to come ends the span, so that the
    outcome is on it whichever order they come in (a timeout's outcome comes first)."""

    __slots__ = ("left", "outcome", "settled", "span")

    def __init__(self, span: Span) -> None:
        self.span, self.left, self.settled = span, False, False
        self.outcome: str | None = None


class OpenTelemetryPlugin:
    """Traces jobs from producer to worker. ``tracer_provider``: where the spans go (the
    global one unless given); ``link``: a run starts a new trace with a span link to the
    producer's span instead of continuing its trace."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *,
                 link: bool = False) -> None:
        self._tracer = trace.get_tracer("tinyq_core.contrib.otel", __version__,
                                        tracer_provider=tracer_provider)
        self._link = link
        self._lock = threading.Lock()
        self._sending: OrderedDict[str, Span] = OrderedDict()  # job id -> send span
        self._running: OrderedDict[str, _Run] = OrderedDict()  # job id -> process span

    # -- producer ----------------------------------------------------------------------------

    @hookimpl
    def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
        span = self._tracer.start_span(f"send {job.queue}", kind=SpanKind.PRODUCER,
                                       attributes=_attributes(job, "send", "send"))
        propagate.inject(headers, context=trace.set_span_in_context(span))
        with self._lock:
            older = self._sending.pop(job.id, None)  # the same id sent twice at once
            self._sending[job.id] = span
            overflow = self._sending.popitem(last=False)[1] \
                if len(self._sending) > MAX_OPEN else None
        for stale in (older, overflow):
            if stale is not None:
                stale.end()

    @hookimpl
    def tinyq_after_enqueue(self, job: Job) -> None:
        with self._lock:
            span = self._sending.pop(job.id, None)
        if span is not None:
            span.end()

    @hookimpl
    def tinyq_enqueue_failed(self, job: Job, error: BaseException) -> None:
        with self._lock:
            span = self._sending.pop(job.id, None)
        if span is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.end()

    # -- worker ------------------------------------------------------------------------------

    def _start_process(self, job: Job, attempt: int | None) -> Span:
        """A ``process`` span for ``job``: the child of its producer's span (and linked to
        it, as the conventions ask of every process span), or with ``link`` a new trace's
        root linked to it."""
        producer = propagate.extract(job.headers)
        sent = trace.get_current_span(producer).get_span_context()
        links = [Link(sent)] if sent.is_valid else []
        attributes = _attributes(job, "process", "process")
        attributes["tinyq.job.retries"] = job.retries
        if attempt is not None:
            attributes["tinyq.job.attempt"] = attempt
        parent = otel_context.Context() if self._link else producer
        return self._tracer.start_span(f"process {job.queue}", context=parent,
                                       kind=SpanKind.CONSUMER, attributes=attributes,
                                       links=links)

    @hookimpl(wrapper=True)
    def tinyq_run_job(self, job: Job) -> Generator[None, Any, Any]:
        run: _Run | None = None
        token: Token[otel_context.Context] | None = None
        try:  # from the start: a job's timeout can land in this code too
            run = _Run(self._start_process(job, current_job().attempt))
            with self._lock:
                self._running[job.id] = run
                overflow = self._running.popitem(last=False)[1] \
                    if len(self._running) > MAX_OPEN else None
            if overflow is not None:
                overflow.span.end()
            token = otel_context.attach(trace.set_span_in_context(run.span))
            return (yield)  # the task's own spans are children of the process span
        except BaseException as exc:
            if run is not None:
                run.span.record_exception(exc)
                run.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            if run is not None:
                self._end(job, run, left=True)

    def _end(self, job: Job, run: _Run, *, left: bool = False, settled: bool = False) -> None:
        with self._lock:
            run.left = run.left or left
            run.settled = run.settled or settled
            done = run.left and run.settled
            if done and self._running.get(job.id) is run:
                del self._running[job.id]
        if done:
            run.span.end()

    def _settle(self, job: Job, outcome: str | None, event: str | None = None,
                attributes: dict[str, Any] | None = None, *, last: bool = True) -> None:
        """Put the outcome (unless one is there: a failure's dead letter stays "failed")
        and ``event`` on the job's process span; ``last``: the run's last outcome hook."""
        with self._lock:
            run = self._running.get(job.id)
        if run is None:
            return
        if event is not None:
            run.span.add_event(event, attributes)
        if outcome is not None and run.outcome is None:
            run.outcome = outcome
            run.span.set_attribute("tinyq.job.outcome", outcome)
        if last:
            self._end(job, run, settled=True)

    @hookimpl
    def tinyq_job_succeeded(self, job: Job) -> None:
        self._settle(job, SUCCEEDED)

    @hookimpl
    def tinyq_job_timed_out(self, job: Job, timeout: float) -> None:
        # The span's outcome stays for tinyq_job_retried or tinyq_job_failed, which follow.
        self._settle(job, None, "tinyq.job.timed_out", {"tinyq.job.timeout": timeout},
                     last=False)

    @hookimpl
    def tinyq_job_retried(self, job: Job, error: BaseException, delay: float) -> None:
        self._settle(job, RETRIED, "tinyq.job.retried", {
            "tinyq.job.retry_delay": delay, "exception.type": type(error).__name__})

    @hookimpl
    def tinyq_job_failed(self, job: Job) -> None:
        self._settle(job, FAILED, last=False)  # tinyq_job_dead_lettered follows

    @hookimpl
    def tinyq_job_dead_lettered(self, delivery: Delivery, job: Job | None,
                                reason: str) -> None:
        if job is not None:
            self._settle(job, DEAD_LETTERED, "tinyq.job.dead_lettered",
                         {"tinyq.job.reason": reason})

    @hookimpl
    def tinyq_job_given_back(self, job: Job, started: bool) -> None:
        if started:  # a cold stop: the run ends without an outcome, the job runs again
            self._settle(job, None, "tinyq.job.given_back")

    @hookimpl
    def tinyq_job_cancelled(self, job: Job, started: bool) -> None:
        if started:
            self._settle(job, CANCELLED, "tinyq.job.cancelled")
        else:
            self._never_ran(job, CANCELLED)

    @hookimpl
    def tinyq_job_expired(self, job: Job) -> None:
        self._never_ran(job, EXPIRED)

    def _never_ran(self, job: Job, outcome: str) -> None:
        """A job settled without a run still ends its trace: an empty process span."""
        span = self._start_process(job, None)
        span.set_attribute("tinyq.job.outcome", outcome)
        span.end()
