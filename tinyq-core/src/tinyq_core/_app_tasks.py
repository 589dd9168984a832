"""The task-registration half of :class:`~tinyq_core.Application`: ``@app.task()`` and the
periodic schedules, kept apart from the broker, producer and worker wiring in _app.py."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

from ._broker_choice import module_name
from ._errors import DuplicateTaskError
from ._limits import task_limits
from ._schedules import Schedule, ScheduleInfo, Schedules
from ._task import AsyncTask, Task, TaskDecorator, TaskOptions, as_seconds

if TYPE_CHECKING:
    from ._app import Application
    from ._codec import Codec
    from ._interfaces import Broker
    from ._producer import Producer

P = ParamSpec("P")
R = TypeVar("R")


class TaskRegistration:
    """A mixin of Application: it registers tasks in ``self.tasks`` and schedules in
    ``self.schedule_registry``, both made by Application.__init__."""

    if TYPE_CHECKING:  # provided by Application
        tasks: dict[str, Task[Any, Any]]
        schedule_registry: Schedules
        codec: Codec
        _producer: Producer

        @property
        def broker(self) -> Broker: ...

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
        expires: float | timedelta | None = None,
        unique: bool = False,
        unique_for: float | timedelta = 0.0,
        rate_limit: str | None = None,
        rate_key: Callable[..., str] | None = None,
        rate_burst: int = 1,
        concurrency: int | None = None,
        concurrency_key: Callable[..., str] | None = None,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str | None = None,
        catch_up: bool = True,
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
        expires: float | timedelta | None = None,
        unique: bool = False,
        unique_for: float | timedelta = 0.0,
        rate_limit: str | None = None,
        rate_key: Callable[..., str] | None = None,
        rate_burst: int = 1,
        concurrency: int | None = None,
        concurrency_key: Callable[..., str] | None = None,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str | None = None,
        catch_up: bool = True,
    ) -> Any:
        """Register a function as a task: ``@app.task()`` or ``@app.task(name=..., ...)``.

        The name defaults to ``module.qualname``; registering a name twice is an error.
        ``expires``: seconds after enqueue its jobs may still start (docs/tasks.md);
        ``unique``: one job per arguments at a time, its lock kept ``unique_for`` seconds
        after it finished; ``cron`` or ``every`` run it periodically, with ``tz`` and
        ``catch_up`` as for :meth:`schedule` (docs/scheduling.md); ``rate_limit`` (with
        ``rate_burst`` starts at once after a quiet spell), ``concurrency`` and their keys
        limit it across all workers (docs/limits.md)."""
        options = TaskOptions(
            queue=queue,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_on=tuple(retry_on),
            timeout=timeout,
            store_result=store_result,
            expires=as_seconds(expires),
            unique=unique,
            unique_for=as_seconds(unique_for) or 0.0,
            limits=task_limits(rate_limit, rate_key, concurrency, concurrency_key, rate_burst),
        )

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{module_name(func)}.{func.__qualname__}"
            if task_name in self.tasks:
                raise DuplicateTaskError(
                    f"a task named {task_name!r} is already registered on this application; "
                    "give one of them another name with @app.task(name=...)"
                )
            kind = AsyncTask if inspect.iscoroutinefunction(func) else Task
            # Only an Application inherits this mixin: the task keeps it as its app.
            app = cast("Application", self)
            task: Task[Any, Any] = kind(app, self._producer, func, task_name, options)
            self.tasks[task_name] = task
            if cron is not None or every is not None:
                try:
                    self.schedule(task, cron=cron, every=every, tz=tz, catch_up=catch_up)
                except BaseException:  # the decorator failed: leave nothing half-registered
                    del self.tasks[task_name]
                    raise
            return task

        return register(fn) if fn is not None else register

    def schedule(
        self,
        task: Task[..., Any] | str,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        catch_up: bool = True,
    ) -> Schedule:
        """Run ``task`` periodically: on a ``cron`` expression (5 fields, or 6 with seconds
        first) in time zone ``tz`` (an IANA name; UTC by default), or ``every`` so many
        seconds. ``name`` tells schedules of one task apart (default: the task's name).
        Every worker runs the scheduler (``--no-scheduler`` opts out) and exactly one job is
        enqueued per tick. After an outage, one catch-up run at start (``catch_up=False``:
        none). See docs/scheduling.md."""
        return self.schedule_registry.add(task, self.tasks, self.codec, cron=cron, every=every,
                                          tz=tz, args=tuple(args), kwargs=kwargs, name=name,
                                          catch_up=catch_up)

    def schedules(self) -> list[ScheduleInfo]:
        """The schedules, by name, with their next run and the last tick the broker recorded."""
        return self.schedule_registry.infos(self.broker)
