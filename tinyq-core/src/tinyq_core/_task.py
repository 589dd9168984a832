"""Tasks: what ``@app.task()`` returns (job handles are in _handle.py)."""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

import attrs

from ._errors import SerializationError
from ._handle import JobHandle
from ._limits import TaskLimits
from ._task_async import AwaitableEnqueue
from ._types import Job
from ._unique import unique_job
from ._workflows import Signature

if TYPE_CHECKING:
    from ._app import Application
    from ._producer import Producer

P = ParamSpec("P")
R = TypeVar("R")


@attrs.frozen
class TaskOptions:
    """How a task is queued and retried; set through ``@app.task(...)``."""

    queue: str = "default"
    max_retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout: float | None = None
    store_result: bool = True
    expires: float | None = None  # seconds after enqueue the job may still start
    unique: bool = False
    unique_for: float = 0.0  # seconds a unique job keeps its lock after it finished
    limits: TaskLimits | None = None  # rate and concurrency limits (_limits.py)


def checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as a dict, or a clear error when a key or value is not a string."""
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of str to str, not {type(headers).__name__}")
    for key, value in headers.items():
        if type(key) is not str or type(value) is not str:
            raise TypeError(f"headers must map str to str: {key!r:.60}: {value!r:.60} is not "
                            "(convert the value with str())")
    return dict(headers)


def as_seconds(value: float | timedelta | None) -> float | None:
    """A duration given as seconds or a timedelta, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else value


def new_job_id() -> str:
    """32 random hex digits, like ``uuid4().hex`` (122 random bits there, 128 here) at a
    fraction of its cost: it runs once per job."""
    return os.urandom(16).hex()


# The latest due time a datetime can name: brokers turn due times into integer milliseconds
# (Redis scores, ``int()``), and inf, NaN or 1e300 there fail deep inside the broker instead.
LATEST_DUE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def _due(countdown: float | None, eta: datetime | float | None) -> float | None:
    if countdown is not None and eta is not None:
        raise ValueError("pass countdown or eta, not both")
    if countdown is not None:
        if not math.isfinite(countdown):
            raise ValueError(f"countdown must be a finite number of seconds, not {countdown!r}")
        if countdown <= 0:
            return None
        due = time.time() + countdown
        what = f"countdown={countdown:g}"
    elif isinstance(eta, datetime):
        due = (eta if eta.tzinfo else eta.replace(tzinfo=timezone.utc)).timestamp()
        what = f"eta={eta.isoformat()}"
    else:
        assert eta is not None
        if not math.isfinite(eta):
            raise ValueError(f"eta must be a finite Unix time, not {eta!r}")
        due, what = eta, f"eta={eta:g}"
    if due > LATEST_DUE:
        raise ValueError(f"{what} puts the job past the year 9999: pass a countdown in seconds "
                         "or an eta as a datetime or Unix time before then")
    return due


def expiry_time(expires: float | timedelta | datetime) -> float:
    """The Unix time a job expires: ``expires`` seconds (or a timedelta) from now, or a
    datetime (naive meaning UTC, as for ``eta``)."""
    if isinstance(expires, datetime):
        aware = expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)
        return aware.timestamp()
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
    if not math.isfinite(seconds):
        raise ValueError(f"expires must be a finite number of seconds, not {expires!r}")
    return time.time() + seconds


class Task(AwaitableEnqueue[P, R], Generic[P, R]):
    """A function registered with an application: call it to run it here, ``delay`` it to run
    it on a worker."""

    def __init__(
        self,
        app: Application,
        producer: Producer,
        fn: Callable[..., Any],
        name: str,
        options: TaskOptions,
    ) -> None:
        self.app = app
        self._producer = producer
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.fn(*args, **kwargs)
        return result

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue a job with these arguments."""
        return self.apply_async(args, kwargs)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature for a workflow step (in a chain, the previous value comes first)."""
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: the previous step's value is not passed."""
        return Signature(self, args, kwargs, immutable=True)

    def apply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | float | None = None,
        queue: str | None = None,
        job_id: str | None = None,
        durable: bool | None = None,
        headers: Mapping[str, str] | None = None,
        expires: float | timedelta | datetime | None = None,
        unique_for: float | timedelta | None = None,
        unique_key: str | None = None,
    ) -> JobHandle[R]:
        """Enqueue with options: ``countdown`` seconds from now or at ``eta`` (a datetime, naive
        meaning UTC, or a Unix time), on another ``queue``, under a chosen ``job_id``;
        ``durable`` overrides the application's ``durable_enqueue`` for this job;
        ``headers``, str to str, travel with the job (``current_job().headers``).
        ``expires`` (seconds from now, or a datetime): a job not started by then never runs.
        ``unique_for`` / ``unique_key`` make the job unique (see docs/tasks.md)."""
        job = self._apply_job(args, kwargs, countdown=countdown, eta=eta, queue=queue,
                              job_id=job_id, headers=headers, expires=expires,
                              unique_for=unique_for, unique_key=unique_key)
        return self._producer.enqueue([job], durable)[0]

    def _apply_job(
        self, args: Iterable[Any], kwargs: Mapping[str, Any] | None, *,
        countdown: float | None, eta: datetime | float | None, queue: str | None,
        job_id: str | None, headers: Mapping[str, str] | None,
        expires: float | timedelta | datetime | None,
        unique_for: float | timedelta | None, unique_key: str | None,
    ) -> Job:
        """The job :meth:`apply_async` (and ``aapply_async``) enqueues."""
        due = None if countdown is None and eta is None else _due(countdown, eta)
        job = self._job(tuple(args), dict(kwargs or {}), queue, job_id, due)
        if expires is not None:
            job = attrs.evolve(job, expires=expiry_time(expires))
        if headers:
            job = attrs.evolve(job, headers=checked_headers(headers))
        return unique_job(job, self.options, self._producer.codec.serializer,
                          as_seconds(unique_for), unique_key)

    def map(
        self,
        arguments: Iterable[Any],
        *,
        durable: bool | None = None,
        job_ids: Sequence[str] | None = None,
    ) -> list[JobHandle[R]]:
        """Enqueue one job per item in a single broker operation; each item is a tuple of
        positional arguments (anything else is taken as the only argument). ``durable``
        overrides the application's ``durable_enqueue`` (one wait for the whole batch).
        ``job_ids`` names the jobs, one id per item: the same call made again then adds
        only the jobs not still queued (see EnqueueError for a refused batch)."""
        jobs = self._map_jobs(arguments, job_ids)
        return self._producer.enqueue(jobs, durable) if jobs else []

    def _map_jobs(self, arguments: Iterable[Any], job_ids: Sequence[str] | None) -> list[Job]:
        """The jobs :meth:`map` (and ``amap``) enqueues."""
        if job_ids is None:
            jobs = [
                self._job(item if isinstance(item, tuple) else (item,), {}, None, None, None)
                for item in arguments
            ]
        else:
            items = list(arguments)
            if isinstance(job_ids, str) or len(job_ids) != len(items) or not all(job_ids):
                raise ValueError(f"map() of {len(items)} item(s) needs as many job_ids, "
                                 f"one non-empty id per item, not {job_ids!r:.60}")
            jobs = [self._job(item if isinstance(item, tuple) else (item,), {}, None,
                              str(job_id), None)
                    for item, job_id in zip(items, job_ids, strict=True)]
        return jobs

    def _job(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        queue: str | None,
        job_id: str | None,
        due: float | None,
    ) -> Job:
        return Job(
            id=job_id or new_job_id(),
            task_name=self.name,
            args=args,
            kwargs=kwargs,
            queue=queue or self.options.queue,
            eta=due,
            expires=None if self.options.expires is None else expiry_time(self.options.expires),
        )

    def explain_serialization_error(self, job: Job, error: SerializationError) -> str:
        """Name the argument the serializer could not encode (only on the error path)."""
        serializer = self._producer.codec.serializer
        try:
            params = list(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):
            params = []
        named: list[tuple[str, Any]] = [
            (f"argument {params[i]!r}" if i < len(params) else f"argument {i}", value)
            for i, value in enumerate(job.args)
        ]
        named += [(f"argument {key!r}", value) for key, value in job.kwargs.items()]
        for label, value in named:
            try:
                serializer.dumps(value)
            except SerializationError as exc:
                return f"cannot enqueue {self.name}: {label}: {exc}"
        return f"cannot enqueue {self.name}: {error}"


class AsyncTask(Task[P, R]):
    """A task whose function is ``async def``: calling it returns the coroutine, and its
    jobs' results are what the coroutine returns (the worker runs it on an event loop)."""

    def __call__(  # type: ignore[override]
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]:
        coroutine: Coroutine[Any, Any, R] = self.fn(*args, **kwargs)
        return coroutine


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` returns: turns a function into a Task (or an AsyncTask)."""

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...
