"""The Application: its broker and backends, the producer side, and the factory for workers
(task registration is the mixin in _app_tasks.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._app_tasks import TaskRegistration
from ._backends import Backends
from ._broker_choice import chosen_broker
from ._cancelling import CancelOutcome
from ._codec import Codec
from ._errors import ConfigurationError, UnknownTaskError
from ._handle import JobHandle
from ._interfaces import Broker, BrokerAdmin, ResultBackend, WorkerRegistry
from ._plugins import Registry, build_registry
from ._producer import Producer
from ._registry import decode_workers
from ._runtime_interfaces import Serializer
from ._schedules import Schedules
from ._task import Task, new_job_id
from ._types import Job, WorkerInfo
from ._worker import DEFAULT_ASYNC_CONCURRENCY, DEFAULT_HEARTBEAT_INTERVAL, Worker

DEFAULT_RESULT_TTL = 24 * 3600.0
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024  # bytes of an encoded job
DEFAULT_MAX_RESULT_SIZE = DEFAULT_MAX_MESSAGE_SIZE  # bytes of an encoded result


class Application(TaskRegistration):
    """A tinyq application: a broker, a result backend, and the tasks registered on it.

    ``broker`` is a URI (``"redis://"``, ``"sqlite:///tinyq.db"``, ``"memory://"``, ...) or a
    :class:`Broker` instance. ``$TINYQ_URL``, when set, overrides a URI (not an instance; the
    worker's ``-u`` overrides both); without either, the embedded default
    ``sqlite:///tinyq.db``, a file in the working directory (needs ``tinyq-sqlite``).
    ``secret_key`` (one key, or several for rotation: sign with the first, accept any) turns
    on HMAC-SHA256 signing of every message and result. ``max_message_size`` bounds an
    encoded job (bytes; ``None``: no limit): producers refuse larger ones, workers dead-letter
    them. ``max_result_size`` bounds an encoded result (bytes; ``None``: no limit): a worker
    fails a job whose return value is larger, without retries, and dead-letters it. With
    ``strict_queues``, enqueueing to a queue that is neither ``"default"``, in ``queues`` nor a
    task's queue is an error. With ``durable_enqueue``, an enqueue returns only
    once a replica of the broker has the job (Redis ``WAIT``; see docs/scaling.md) and raises
    :class:`BrokerError` when none confirms it in time. ``plugins`` registers plugin objects
    or modules without installing them (handy in tests).
    """

    def __init__(
        self,
        broker: str | Broker | None = None,
        *,
        result_backend: ResultBackend | None = None,
        serializer: str | Serializer = "json",
        executor: str = "thread",
        result_ttl: float = DEFAULT_RESULT_TTL,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_result_size: int | None = DEFAULT_MAX_RESULT_SIZE,
        queues: Iterable[str] = (),
        strict_queues: bool = False,
        durable_enqueue: bool = False,
        plugins: Iterable[Any] = (),
    ) -> None:
        self.registry: Registry = build_registry(plugins)
        self.declared_queues = {"default", *queues}
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.schedule_registry = Schedules()  # app.schedule(); run by every worker's scheduler
        self.result_ttl = result_ttl
        self.max_result_size = max_result_size
        self.executor_name = executor
        self.registry.executor(executor)  # fail early on an unknown executor name
        self.codec = Codec(
            serializer if isinstance(serializer, Serializer) else self.registry.serializer(
                serializer
            ),
            secret_key,
        )
        # The backend given here; None: the broker's own (results then ride the worker's
        # settle round trip).
        self.result_backend = result_backend
        self._backends = Backends(self.registry, chosen_broker(broker),
                                  result_backend)
        self._producer = Producer(
            self._backends, self.codec, self.tasks, self.known_queues,
            max_message_size=max_message_size, strict_queues=strict_queues,
            durable_enqueue=durable_enqueue, result_ttl=result_ttl,
        )

    def __repr__(self) -> str:
        return f"<Application {self._backends!r}>"

    # -- configuration -----------------------------------------------------------------------

    def use_broker(self, broker: str | Broker) -> None:
        """Switch to another broker (the CLI's ``-u``; tests). A URI is checked now and
        connected on first use."""
        self._backends.use(broker)

    @property
    def broker_uri(self) -> str:
        """The broker's URI; empty when the broker was given as an instance."""
        return self._backends.uri

    @property
    def broker(self) -> Broker:
        return self._backends.broker

    @property
    def results(self) -> ResultBackend:
        """Where results are stored: ``result_backend``, else the broker's own."""
        return self._backends.results

    @property
    def max_message_size(self) -> int | None:
        return self._producer.max_message_size

    @property
    def strict_queues(self) -> bool:
        return self._producer.strict_queues

    @property
    def durable_enqueue(self) -> bool:
        return self._producer.durable_enqueue

    def close(self) -> None:
        self._backends.close()

    async def aclose(self) -> None:
        """Close the connections the awaitable API opened for the running event loop (call
        it in your framework's shutdown, on the loop that used them; see docs/asyncio.md)."""
        await self._producer.aio.aclose()

    # -- tasks: task(), schedule() and schedules() are in _app_tasks.py ----------------


    def cancel(
        self, job_id: str, queue: str | None = None, *, grace: float | None = None
    ) -> CancelOutcome:
        """Cancel job ``job_id``: a waiting one never runs; a running one is asked to stop
        (``current_job().cancelled``), and interrupted after ``grace`` seconds when given.
        Returns a :data:`CancelOutcome`. See docs/tasks.md."""
        return self._producer.cancel(job_id, queue, grace)

    async def acancel(
        self, job_id: str, queue: str | None = None, *, grace: float | None = None
    ) -> CancelOutcome:
        """:meth:`cancel`, awaitable."""
        return await self._producer.aio.acancel(job_id, queue, grace)

    def send(self, task_name: str, *args: Any, **kwargs: Any) -> JobHandle[Any]:
        """Enqueue a job by task name, without importing the task's code. The job goes to the
        task's queue when the task is registered here, else to ``"default"``."""
        task = self.tasks.get(task_name)
        if task is not None:  # with its options (queue, expires, unique), as delay() does
            return task.apply_async(args, kwargs)
        job = Job(id=new_job_id(), task_name=task_name, args=args, kwargs=kwargs)
        return self._producer.enqueue([job])[0]

    async def asend(self, task_name: str, *args: Any, **kwargs: Any) -> JobHandle[Any]:
        """:meth:`send`, awaitable."""
        task = self.tasks.get(task_name)
        queue = task.options.queue if task is not None else "default"
        job = Job(id=new_job_id(), task_name=task_name, args=args, kwargs=kwargs, queue=queue)
        return (await self._producer.aio.aenqueue([job]))[0]

    def job(self, job_id: str, queue: str | None = None) -> JobHandle[Any]:
        """A handle for a job enqueued earlier, from its id. Without ``queue``, the job is
        looked for in the known queues (``"default"``, declared ones, the tasks' own)."""
        return JobHandle(self._producer, job_id, queue)

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTaskError(f"unknown task {name!r}") from None

    def known_queues(self) -> set[str]:
        """``"default"``, the declared queues and the queues of the registered tasks."""
        return self.declared_queues | {task.options.queue for task in self.tasks.values()}

    def queues(self) -> list[str]:
        """Every queue known here or to the broker (one a job was ever sent to, when the
        broker has the admin tier), sorted."""
        broker = self.broker
        names = self.known_queues()
        if isinstance(broker, BrokerAdmin):
            names |= set(broker.queues())
        return sorted(names)

    # -- workers -----------------------------------------------------------------------------

    def workers(self) -> list[WorkerInfo]:
        """The live workers on this broker, as they last recorded themselves (every
        ``heartbeat_interval`` seconds), sorted by host and pid. A worker that died without
        a word is gone from the list three intervals after its last heartbeat."""
        broker = self.broker
        if not isinstance(broker, WorkerRegistry):
            raise ConfigurationError(
                f"the broker {type(broker).__name__} keeps no worker registry, so its workers "
                "cannot be listed; use a broker that has one (redis, sqlite, memory)"
            )
        return decode_workers(broker.worker_records())

    def worker(
        self,
        concurrency: int = 8,
        queues: Sequence[str] | None = None,
        *,
        prefetch: int | None = None,
        shutdown_timeout: float | None = None,
        executor: str | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        scheduler: bool = True,
        async_concurrency: int = DEFAULT_ASYNC_CONCURRENCY,
    ) -> Worker:
        """A worker for this application; ``run()`` it (``burst=True`` to stop when idle).
        It records itself in the broker's worker registry every ``heartbeat_interval``
        seconds (see :meth:`workers`) and, with ``scheduler``, enqueues the schedules.
        ``async_concurrency``: async jobs run at a time on its event loop
        (docs/asyncio.md)."""
        return Worker(
            self,
            concurrency=concurrency,
            queues=queues,
            prefetch=prefetch,
            shutdown_timeout=shutdown_timeout,
            executor=executor or self.executor_name,
            heartbeat_interval=heartbeat_interval,
            scheduler=scheduler,
            async_concurrency=async_concurrency,
        )

