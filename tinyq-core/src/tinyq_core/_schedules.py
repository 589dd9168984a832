"""Periodic schedules: what ``app.schedule()`` and ``@app.task(cron=..., every=...)`` register.

A :class:`Schedule` is a value: a name, a task, a queue, when it ticks, what it passes. The
job of a tick has the id ``<name>@<tick in ms>``, and the broker's record of the schedule's
last tick (:class:`~tinyq_core.plugin.ScheduleRecords`) decides, atomically with the
enqueue, which one of the racing schedulers enqueues it (see _worker/scheduler.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ._codec import Codec
from ._control_interfaces import ScheduleRecords
from ._errors import ConfigurationError
from ._task import as_seconds
from ._ticks import Ticks, ticks_of
from ._types import Job

if TYPE_CHECKING:
    from ._task import Task

SCHEDULE_HEADER = "tinyq-schedule"  # the schedule's name, on every job it enqueues
TICK_HEADER = "tinyq-tick"  # the job's tick, a Unix time


@attrs.frozen
class Schedule:
    """A task run periodically: on ``cron`` in time zone ``tz``, or ``every`` so many
    seconds, with ``args`` and ``kwargs``, enqueued to ``queue``. ``name`` is unique in
    the application (it names the broker's record). ``catch_up``: after ticks were missed
    while no worker ran, one run at start (False: none)."""

    name: str
    task_name: str
    queue: str
    cron: str | None = None
    every: float | None = None
    tz: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, hash=False)  # a dict: unhashable
    catch_up: bool = True
    _ticks: Ticks = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_ticks", ticks_of(self.cron, self.every, self.tz))

    @property
    def spec(self) -> str:
        """When it ticks, as a person reads it: ``cron 0 3 * * * Europe/Berlin``, ``every 30s``."""
        if self.every is not None:
            return f"every {self.every:g}s"
        return f"cron {self.cron}" + (f" {self.tz}" if self.tz else "")

    def latest_tick(self, now: float) -> float | None:
        """The latest tick at or before ``now`` (None: none yet)."""
        return self._ticks.latest(now)

    def next_tick(self, after: float) -> float | None:
        """The first tick strictly after ``after`` (None: never again)."""
        return self._ticks.after(after)

    def job_id(self, tick: float) -> str:
        return f"{self.name}@{round(tick * 1000)}"

    def job(self, tick: float) -> Job:
        """The job of ``tick``: its id derives from the schedule and the tick."""
        return Job(id=self.job_id(tick), task_name=self.task_name, args=self.args,
                   kwargs=dict(self.kwargs), queue=self.queue,
                   headers={SCHEDULE_HEADER: self.name, TICK_HEADER: repr(tick)})


@attrs.frozen
class ScheduleInfo:
    """A schedule as ``app.schedules()`` lists it: ``next_run`` is its next tick (Unix time;
    None: never again), ``last_tick`` the last one the broker recorded (None: none yet, or a
    broker that keeps no schedule records)."""

    schedule: Schedule
    next_run: float | None
    last_tick: float | None


class Schedules:
    """An application's schedules, by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Schedule] = {}

    def __iter__(self) -> Iterator[Schedule]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)

    def add(
        self,
        task: Task[..., Any] | str,
        tasks: Mapping[str, Task[Any, Any]],
        codec: Codec,
        *,
        cron: str | None,
        every: float | timedelta | None,
        tz: str | None,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        name: str | None,
        catch_up: bool,
    ) -> Schedule:
        """Register a schedule of ``task`` (a Task, or a task name: its queue then is the
        registered task's, else ``"default"``); a name taken already is an error."""
        known = tasks.get(task) if isinstance(task, str) else task
        task_name = task if isinstance(task, str) else task.name
        queue = known.options.queue if known is not None else "default"
        schedule = Schedule(name or task_name, task_name, queue, cron=cron,
                            every=as_seconds(every), tz=tz, args=tuple(args),
                            kwargs=dict(kwargs or {}), catch_up=catch_up)
        if schedule.name in self._by_name:
            raise ConfigurationError(
                f"a schedule named {schedule.name!r} is registered already; give this one "
                "another name with app.schedule(..., name=...)")
        codec.encode_job(schedule.job(0.0))  # arguments the serializer refuses fail here
        self._by_name[schedule.name] = schedule
        return schedule

    def infos(self, broker: object, now: float | None = None) -> list[ScheduleInfo]:
        """Every schedule with its next run and the tick its broker recorded, by name."""
        now = time.time() if now is None else now
        schedules = sorted(self, key=lambda s: s.name)
        recorded = last_ticks(broker, schedules)
        return [ScheduleInfo(s, s.next_tick(now), recorded.get(s.name)) for s in schedules]


def last_ticks(broker: object, schedules: Sequence[Schedule]) -> dict[str, float]:
    """The recorded tick of each of ``schedules`` that has one: one call per queue. A broker
    without the tier has none."""
    if not isinstance(broker, ScheduleRecords):
        return {}
    by_queue: dict[str, list[str]] = {}
    for schedule in schedules:
        by_queue.setdefault(schedule.queue, []).append(schedule.name)
    found: dict[str, float] = {}
    for queue, names in by_queue.items():
        found.update(broker.last_ticks(queue, names))
    return found
