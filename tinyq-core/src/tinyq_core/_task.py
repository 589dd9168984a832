"""Tasks (what ``@app.task()`` returns) and job handles (what ``.delay()`` returns)."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

import attrs

from ._errors import JobFailed, SerializationError
from ._interfaces import BrokerAdmin
from ._types import Job, JobStatus

if TYPE_CHECKING:
    from ._app import Application

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


def new_job_id() -> str:
    """32 random hex digits, like ``uuid4().hex`` (122 random bits there, 128 here) at a
    fraction of its cost: it runs once per job."""
    return os.urandom(16).hex()


def _due(countdown: float | None, eta: datetime | float | None) -> float | None:
    if countdown is not None and eta is not None:
        raise ValueError("pass countdown or eta, not both")
    if countdown is not None:
        return time.time() + countdown if countdown > 0 else None
    if isinstance(eta, datetime):
        eta = (eta if eta.tzinfo else eta.replace(tzinfo=timezone.utc)).timestamp()
    return eta


class JobHandle(Generic[R]):
    """A reference to an enqueued job: its id, its status and, once done, its result."""

    __slots__ = ("_app", "id", "queue")

    def __init__(self, app: Application, id: str, queue: str | None = None) -> None:
        self._app = app
        self.id = id
        self.queue = queue  # None until known: app.job(id) looks it up on first use

    def __repr__(self) -> str:
        return f"<JobHandle {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other.id == self.id and other._app is self._app

    def __hash__(self) -> int:
        return hash(self.id)

    def status(self) -> JobStatus:
        """``"queued"``, ``"scheduled"``, ``"started"``, ``"succeeded"``, ``"failed"``, or
        ``"unknown"`` (no such job, its result expired, or it succeeded with
        ``store_result=False``: failures are always stored)."""
        queue = self._locate()
        if queue is None:
            return "unknown"
        outcome = self._app._fetch_outcome(self.id, 0, queue)
        if outcome is not None:
            return "succeeded" if outcome.get("ok") else "failed"
        broker = self._app.broker
        return broker.status(self.id, queue) if isinstance(broker, BrokerAdmin) else "unknown"

    def _locate(self) -> str | None:
        if self.queue is None:
            self.queue = self._app._find_queue(self.id)
        return self.queue

    def result(self, timeout: float | None = None) -> R:
        """Wait up to ``timeout`` seconds (forever when ``None``) and return the job's value.

        Raises :class:`JobFailed` when the job failed and :class:`TimeoutError` when it did not
        finish in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        queue = self._locate()
        while queue is None:  # a handle from app.job(id) of a job not found yet
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} was not found in any known queue")
            time.sleep(0.1)
            queue = self._locate()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        outcome = self._app._fetch_outcome(self.id, remaining, queue)
        if outcome is None:
            raise TimeoutError(f"job {self.id} did not finish within {timeout} seconds")
        if outcome.get("ok"):
            return cast(R, outcome.get("value"))
        raise JobFailed(
            str(outcome.get("error", "job failed")),
            exc_type=str(outcome.get("type", "")),
            traceback=str(outcome.get("traceback", "")),
        )


class Task(Generic[P, R]):
    """A function registered with an application: call it to run it here, ``delay`` it to run
    it on a worker."""

    def __init__(
        self, app: Application, fn: Callable[..., Any], name: str, options: TaskOptions
    ) -> None:
        self.app = app
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
    ) -> JobHandle[R]:
        """Enqueue with options: ``countdown`` seconds from now or at ``eta`` (a datetime, naive
        meaning UTC, or a Unix time), on another ``queue``, under a chosen ``job_id``;
        ``durable`` overrides the application's ``durable_enqueue`` for this job."""
        due = None if countdown is None and eta is None else _due(countdown, eta)
        job = self._job(tuple(args), dict(kwargs or {}), queue, job_id, due)
        return self.app._enqueue([job], durable)[0]

    def map(
        self, arguments: Iterable[Any], *, durable: bool | None = None
    ) -> list[JobHandle[R]]:
        """Enqueue one job per item in a single broker operation; each item is a tuple of
        positional arguments (anything else is taken as the only argument). ``durable``
        overrides the application's ``durable_enqueue`` (one wait for the whole batch)."""
        jobs = [
            self._job(item if isinstance(item, tuple) else (item,), {}, None, None, None)
            for item in arguments
        ]
        return self.app._enqueue(jobs, durable) if jobs else []

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
        )

    def explain_serialization_error(self, job: Job, error: SerializationError) -> str:
        """Name the argument the serializer could not encode (only on the error path)."""
        serializer = self.app.codec.serializer
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
