"""The Application: task registry, producer side, and the factory for workers."""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from ._codec import Codec
from ._errors import (
    BadMessage,
    ConfigurationError,
    DuplicateTaskError,
    MessageTooLarge,
    SerializationError,
    UnknownTaskError,
)
from ._interfaces import Broker, BrokerAdmin, ResultBackend, Serializer
from ._plugins import Registry, build_registry
from ._task import AsyncTask, JobHandle, Task, TaskDecorator, TaskOptions, new_job_id
from ._types import Job, Message, Result
from ._uri import redact_uri

if TYPE_CHECKING:
    from ._worker import Worker

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RESULT_TTL = 24 * 3600.0
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024  # bytes of an encoded job


def _module_name(fn: Callable[..., Any]) -> str:
    """The importable module of ``fn``: a script run as ``python app.py`` is ``app``, so a
    producer script and a worker that imports it agree on task names."""
    module = fn.__module__
    if module == "__main__":
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            return str(spec.name)
        path = getattr(main, "__file__", None)
        if path:
            return str(path).replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
    return module


class Application:
    """A tinyq application: a broker, a result backend, and the tasks registered on it.

    ``broker`` is a URI (``"redis://"``, ``"memory://"``, ...) or a :class:`Broker` instance.
    ``secret_key`` (one key, or several for rotation: sign with the first, accept any) turns
    on HMAC-SHA256 signing of every message and result. ``max_message_size`` bounds an
    encoded job (bytes; ``None``: no limit): producers refuse larger ones, workers dead-letter
    them. With ``strict_queues``, enqueueing to a queue that is neither ``"default"``, in
    ``queues`` nor a task's queue is an error. With ``durable_enqueue``, an enqueue returns only
    once a replica of the broker has the job (Redis ``WAIT``; see docs/scaling.md) and raises
    :class:`BrokerError` when none confirms it in time. ``plugins`` registers plugin objects
    or modules without installing them (handy in tests).
    """

    def __init__(
        self,
        broker: str | Broker = "redis://",
        *,
        result_backend: ResultBackend | None = None,
        serializer: str | Serializer = "json",
        executor: str = "thread",
        result_ttl: float = DEFAULT_RESULT_TTL,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        queues: Iterable[str] = (),
        strict_queues: bool = False,
        durable_enqueue: bool = False,
        plugins: Iterable[Any] = (),
    ) -> None:
        self.registry: Registry = build_registry(plugins)
        self.max_message_size = max_message_size
        self.declared_queues = {"default", *queues}
        self.strict_queues = strict_queues
        self.durable_enqueue = durable_enqueue
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.result_ttl = result_ttl
        self.executor_name = executor
        self.registry.executor(executor)  # fail early on an unknown executor name
        self.codec = Codec(
            serializer if isinstance(serializer, Serializer) else self.registry.serializer(
                serializer
            ),
            secret_key,
        )
        self._explicit_results = result_backend
        self._result_backend = result_backend
        self._broker: Broker | None = None
        self.broker_uri = ""
        self.use_broker(broker)

    def __repr__(self) -> str:
        return f"<Application {redact_uri(self.broker_uri) or type(self._broker).__name__}>"

    # -- configuration -----------------------------------------------------------------------

    def use_broker(self, broker: str | Broker) -> None:
        """Switch to another broker (the CLI's ``-u``; tests). A URI is checked now and
        connected on first use."""
        if self._broker is not None and self.broker_uri:
            self._broker.close()
        self._result_backend = self._explicit_results
        if isinstance(broker, Broker):
            self._broker, self.broker_uri = broker, ""
        else:
            self.registry.check_broker_uri(broker)
            self._broker, self.broker_uri = None, broker

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = self.registry.broker(self.broker_uri)
        return self._broker

    @property
    def results(self) -> ResultBackend:
        if self._result_backend is None:
            self._result_backend = self.broker.result_backend()
        return self._result_backend

    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()

    # -- tasks -------------------------------------------------------------------------------

    @overload
    def task(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str = "default",
        max_retries: int = 0,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 600.0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        timeout: float | None = None,
        store_result: bool = True,
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        max_retries: int = 0,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 600.0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        timeout: float | None = None,
        store_result: bool = True,
    ) -> Any:
        """Register a function as a task: ``@app.task()`` or ``@app.task(name=..., ...)``.

        The name defaults to ``module.qualname``; registering a name twice is an error."""
        options = TaskOptions(
            queue=queue,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_on=tuple(retry_on),
            timeout=timeout,
            store_result=store_result,
        )

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{_module_name(func)}.{func.__qualname__}"
            if task_name in self.tasks:
                raise DuplicateTaskError(
                    f"a task named {task_name!r} is already registered on this application; "
                    "give one of them another name with @app.task(name=...)"
                )
            kind = AsyncTask if inspect.iscoroutinefunction(func) else Task
            task: Task[Any, Any] = kind(self, func, task_name, options)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def send(self, task_name: str, *args: Any, **kwargs: Any) -> JobHandle[Any]:
        """Enqueue a job by task name, without importing the task's code. The job goes to the
        task's queue when the task is registered here, else to ``"default"``."""
        task = self.tasks.get(task_name)
        queue = task.options.queue if task is not None else "default"
        job = Job(id=new_job_id(), task_name=task_name, args=args, kwargs=kwargs, queue=queue)
        return self._enqueue([job])[0]

    def job(self, job_id: str, queue: str | None = None) -> JobHandle[Any]:
        """A handle for a job enqueued earlier, from its id. Without ``queue``, the job is
        looked for in the known queues (``"default"``, declared ones, the tasks' own)."""
        return JobHandle(self, job_id, queue)

    def _find_queue(self, job_id: str) -> str | None:
        """The known queue that holds ``job_id`` or its result, if any."""
        broker = self.broker
        for queue in sorted(self.known_queues()):
            if isinstance(broker, BrokerAdmin) and broker.status(job_id, queue) != "unknown":
                return queue
            if self.results.get(job_id, 0, queue) is not None:
                return queue
        return None

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTaskError(f"unknown task {name!r}") from None

    # -- producer internals ------------------------------------------------------------------

    def known_queues(self) -> set[str]:
        return self.declared_queues | {task.options.queue for task in self.tasks.values()}

    def _enqueue(
        self, jobs: Sequence[Job], durable: bool | None = None
    ) -> list[JobHandle[Any]]:
        messages = []
        known = self.known_queues() if self.strict_queues else set()
        limit = self.max_message_size
        for job in jobs:
            if self.strict_queues and job.queue not in known:
                raise ConfigurationError(
                    f"cannot enqueue {job.task_name}: unknown queue {job.queue!r} (known: "
                    f"{', '.join(sorted(known))}); declare it with Application(queues=[...])"
                )
            try:
                body = self.codec.encode_job(job)
            except SerializationError as exc:
                task = self.tasks.get(job.task_name)
                text = (
                    task.explain_serialization_error(job, exc)
                    if task is not None
                    else f"cannot enqueue {job.task_name}: {exc}"
                )
                raise SerializationError(text) from None
            if limit is not None and len(body) > limit:
                raise MessageTooLarge(
                    f"cannot enqueue {job.task_name}: the job is {len(body):,} bytes encoded, "
                    f"more than max_message_size ({limit:,}); pass large data by reference "
                    "(a path, a URL, a key) or raise the limit"
                )
            messages.append(Message(job.id, job.queue, body, job.eta))
        if self.durable_enqueue if durable is None else durable:
            self.broker.enqueue(messages, durable=True)
        else:
            self.broker.enqueue(messages)
        return [JobHandle(self, job.id, job.queue) for job in jobs]

    def _fetch_outcome(
        self, job_id: str, timeout: float | None, queue: str
    ) -> dict[str, Any] | None:
        result = self.results.get(job_id, timeout, queue)
        if result is None:
            return None
        try:
            outcome = self.codec.decode(result.body)
        except BadMessage as exc:
            return {"ok": False, "type": "BadMessage", "error": f"unreadable result: {exc.reason}"}
        return outcome if isinstance(outcome, dict) else {"ok": True, "value": outcome}

    def _success(self, job: Job, value: Any) -> Result:
        try:
            return Result(job.id, self.codec.encode({"ok": True, "value": value}), job.queue)
        except SerializationError as exc:
            return self._failure(job.id, job.queue, "SerializationError",
                                 f"SerializationError: the return value: {exc}")

    def _failure(
        self, job_id: str, queue: str, exc_type: str, error: str, tb: str = ""
    ) -> Result:
        outcome = {"ok": False, "type": exc_type, "error": error, "traceback": tb}
        return Result(job_id, self.codec.encode(outcome), queue)

    def _exception_result(self, job: Job, exc: BaseException) -> Result:
        return self._failure(
            job.id,
            job.queue,
            type(exc).__name__,
            describe_exception(exc),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )

    # -- workers -----------------------------------------------------------------------------

    def worker(
        self,
        concurrency: int = 8,
        queues: Sequence[str] | None = None,
        *,
        prefetch: int | None = None,
        shutdown_timeout: float | None = None,
        executor: str | None = None,
    ) -> Worker:
        """A worker for this application; ``run()`` it (``burst=True`` to stop when idle)."""
        from ._worker import Worker

        return Worker(
            self,
            concurrency=concurrency,
            queues=queues,
            prefetch=prefetch,
            shutdown_timeout=shutdown_timeout,
            executor=executor or self.executor_name,
        )


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"``, even for an exception whose ``__str__`` raises."""
    try:
        text = str(exc)
    except BaseException as inner:  # even SystemExit: a job must not take its thread down
        text = f"<str() of the exception failed: {type(inner).__name__}>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
