"""The hook markers and specifications: a leaf module, so that plugins (the built-in ones
included) import it without importing the registry that loads them.

Two kinds of hooks: ``tinyq_register`` (what a plugin provides: brokers, serializers,
executors), and the job lifecycle hooks (see docs/hooks.md), which tinyq calls itself, one
plugin at a time, so that a plugin that raises is logged and never costs a job (_lifecycle.py).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._plugins import Registry
    from ._types import Delivery, Job
    from ._worker import Worker

PROJECT = "tinyq"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The hooks a tinyq plugin may implement (any subset of them)."""

    @hookspec
    def tinyq_register(self, registry: Registry) -> None:
        """Add the brokers, serializers and executors this plugin provides to ``registry``
        (``add_broker``, ``add_serializer``, ``add_executor``). Called once per
        :class:`~tinyq_core.Application`; raising is reported with the plugin's name."""

    # -- producer ----------------------------------------------------------------------------

    @hookspec
    def tinyq_before_enqueue(self, job: Job, headers: dict[str, str]) -> None:
        """In the producer, before ``job`` is encoded: add to (or change) ``headers``, the
        message headers it will carry (str to str; ``job.headers`` holds those passed to
        ``apply_async``)."""

    @hookspec
    def tinyq_after_enqueue(self, job: Job) -> None:
        """In the producer, once the broker took ``job`` (its ``headers`` as sent); for a
        job that went in on ``EnqueueError.retry()``, at that retry."""

    @hookspec
    def tinyq_enqueue_failed(self, job: Job, error: BaseException) -> None:
        """In the producer, after ``tinyq_before_enqueue``: ``job`` did not go in, because of
        ``error`` (refused by the broker, not encodable, an unknown queue), which the caller
        gets next (or an ``EnqueueError`` made from it, when part of a ``map()`` went in). A
        later ``EnqueueError.retry()`` may still send it (``tinyq_after_enqueue`` then)."""

    # -- worker ------------------------------------------------------------------------------

    @hookspec
    def tinyq_worker_started(self, worker: Worker) -> None:
        """The worker is about to take its first jobs (in the thread that calls ``run``)."""

    @hookspec
    def tinyq_worker_stopping(self, worker: Worker, cold: bool) -> None:
        """The worker stopped taking jobs and starts its shutdown (``cold``: it gives back
        the jobs still running)."""

    @hookspec
    def tinyq_job_received(self, job: Job, attempt: int) -> None:
        """A job was reserved and admitted to run; ``attempt`` is its delivery count (1, or
        more after a worker died running it). The first worker hook of every job."""

    @hookspec
    def tinyq_job_recovered(self, job: Job, attempt: int) -> None:
        """Right after ``tinyq_job_received`` of a job delivered again because the worker
        that held it died (its lease expired): ``attempt`` > 1."""

    @hookspec
    def tinyq_run_job(self, job: Job) -> Generator[None, Any, Any]:
        """A ``@hookimpl(wrapper=True)`` generator around the call of the task, in the job's
        own thread with :func:`~tinyq_core.current_job` set: ``value = yield`` gives the
        task's return value, or raises its exception there (re-raise it; what a wrapper
        returns or raises does not change the job's outcome)."""
        raise NotImplementedError  # pragma: no cover (a specification)

    @hookspec
    def tinyq_job_succeeded(self, job: Job, value: Any, duration: float) -> None:
        """The job returned ``value`` after ``duration`` seconds of running."""

    @hookspec
    def tinyq_job_timed_out(self, job: Job, timeout: float) -> None:
        """The job ran past its ``timeout`` (seconds); ``tinyq_job_retried`` or
        ``tinyq_job_failed`` follows."""

    @hookspec
    def tinyq_job_retried(self, job: Job, error: BaseException, delay: float) -> None:
        """The job raised ``error`` and runs again in ``delay`` seconds."""

    @hookspec
    def tinyq_job_failed(self, job: Job, error: BaseException) -> None:
        """The job raised ``error`` and will not run again (no retry left, or not retryable);
        ``tinyq_job_dead_lettered`` follows."""

    @hookspec
    def tinyq_job_dead_lettered(self, delivery: Delivery, job: Job | None, reason: str) -> None:
        """The message was dead-lettered with ``reason``. ``job`` is None for a message that
        never decoded to a job (malformed, unsigned, tampered with)."""

    @hookspec
    def tinyq_job_given_back(self, job: Job, started: bool) -> None:
        """The worker gave the job back to the broker at shutdown, unfinished: ``started``
        False for a prefetched job, True for a running one (a cold stop)."""

    @hookspec
    def tinyq_job_cancelled(self, job: Job, started: bool) -> None:
        """The job was cancelled (``h.cancel()``): ``started`` False when it was stopped
        before it ran (prefetched, or delivered again after its cancel), True when it was
        running. It is acknowledged, not retried; its result says "cancelled"."""

    @hookspec
    def tinyq_job_expired(self, job: Job) -> None:
        """The job reached the worker after its ``expires`` time and was not run."""
