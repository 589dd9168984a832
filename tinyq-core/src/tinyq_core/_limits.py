"""Task limits: what ``@app.task(rate_limit=..., concurrency=...)`` asks for, checked at
decoration time, and the key each job is limited under. The worker keeps them (see
_worker/limits.py) through the broker's :class:`~tinyq_core.plugin.JobLimits` tier."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import attrs

from ._types import Job

KeyFunction = Callable[..., str]

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+?)s?\s*$")


def parse_rate(spec: str) -> float:
    """``"100/s"``, ``"10/m"``, ``"1000/h"`` as the seconds between two slots."""
    match = _RATE.match(spec.lower()) if isinstance(spec, str) else None
    unit = None if match is None else _UNITS.get(match.group(2))
    count = 0.0 if match is None else float(match.group(1))
    if unit is None or not count > 0 or not math.isfinite(count):
        raise ValueError(f"rate_limit={spec!r:.60}: expected a count per second, minute or "
                         'hour, such as "100/s", "10/m" or "1000/h"')
    return unit / count


@attrs.frozen
class TaskLimits:
    """A task's limits. ``rate_interval``: seconds between two jobs' starts (None: no rate
    limit), ``rate_burst`` of them at once after a quiet spell; ``concurrency``: jobs running
    at once (None: no limit). Each is per task, or per
    the key its function returns for a job's arguments."""

    rate_interval: float | None = None
    rate_key: KeyFunction | None = None
    concurrency: int | None = None
    concurrency_key: KeyFunction | None = None
    rate_burst: int = 1

    def rate_key_of(self, job: Job) -> str:
        return _key(job.task_name, self.rate_key, job)

    def concurrency_key_of(self, job: Job) -> str:
        return _key(job.task_name, self.concurrency_key, job)


def _key(task: str, function: KeyFunction | None, job: Job) -> str:
    """The task's name, then the key function's answer: two tasks never share a limit."""
    if function is None:
        return task
    key = function(*job.args, **job.kwargs)
    if not isinstance(key, str):
        raise TypeError(f"the key function of task {task!r} returned {type(key).__name__}, "
                        "not str")
    return f"{task}:{key}"


def task_limits(
    rate_limit: str | None,
    rate_key: KeyFunction | None,
    concurrency: int | None,
    concurrency_key: KeyFunction | None,
    rate_burst: int = 1,
) -> TaskLimits | None:
    """The limits asked for in ``@app.task(...)``, or a clear error; None without any."""
    if rate_key is not None and rate_limit is None:
        raise ValueError("rate_key= needs rate_limit=")
    if rate_burst != 1 and rate_limit is None:
        raise ValueError("rate_burst= needs rate_limit=")
    if type(rate_burst) is not int or rate_burst < 1:
        raise ValueError(f"rate_burst={rate_burst!r:.40} must be an int of at least 1")
    if concurrency_key is not None and concurrency is None:
        raise ValueError("concurrency_key= needs concurrency=")
    for name, function in (("rate_key", rate_key), ("concurrency_key", concurrency_key)):
        if function is not None and not callable(function):
            raise TypeError(f"{name}= must be a function of the job's "
                            "arguments returning a str")
    if concurrency is not None and (type(concurrency) is not int or concurrency < 1):
        raise ValueError(f"concurrency={concurrency!r:.40} must be an int of "
                         "at least 1")
    if rate_limit is None and concurrency is None:
        return None
    interval = None if rate_limit is None else parse_rate(rate_limit)
    return TaskLimits(interval, rate_key, concurrency, concurrency_key, rate_burst)
