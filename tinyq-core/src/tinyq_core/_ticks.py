"""When a periodic schedule ticks: ``every=N`` seconds, or a cron expression in a time zone.

Ticks are Unix times computed the same way in every process, so two schedulers agree on which
tick is due and race for it in the broker (see _schedules.py). Both kinds answer two
questions: the latest tick at or before a time, and the first tick after one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from ._errors import ConfigurationError

CRON_EXTRA = "pip install 'tinyq-core[cron]'"


class Ticks(Protocol):
    def latest(self, now: float) -> float | None:
        """The latest tick at or before ``now``; None when there is none."""

    def after(self, moment: float) -> float | None:
        """The first tick strictly after ``moment``; None when there is none."""


class EveryTicks:
    """Every ``period`` seconds, at the Unix times that are multiples of it (whole
    milliseconds): ``every=60`` ticks at each minute's start whichever process computes it."""

    def __init__(self, period: float) -> None:
        if not (isinstance(period, int | float) and math.isfinite(period)):
            raise ConfigurationError(f"every= takes seconds or a timedelta, not {period!r}")
        self.period_ms = round(period * 1000)
        if self.period_ms < 1:
            raise ConfigurationError(f"every= must be at least 1 ms, not {period!r}")

    def latest(self, now: float) -> float:
        return math.floor(now * 1000 / self.period_ms) * self.period_ms / 1000

    def after(self, moment: float) -> float:
        tick = self.latest(moment) + self.period_ms / 1000
        return tick if tick > moment else tick + self.period_ms / 1000


class CronTicks:
    """A cron expression (5 fields, or 6 with seconds first) evaluated by cronsim in the IANA
    time zone ``tz``, with Debian cron's rules at DST changes (see docs/scheduling.md)."""

    def __init__(self, expression: str, tz: str | None) -> None:
        try:
            from cronsim import CronSim, CronSimError
        except ImportError:
            raise ConfigurationError(
                f"cron= schedules need the cronsim library: {CRON_EXTRA} (every= needs "
                "nothing)") from None
        self._cronsim, self.expression = CronSim, expression
        self.zone = _zone(tz)
        try:
            CronSim(expression, datetime.now(self.zone))
        except (CronSimError, ValueError) as exc:
            raise ConfigurationError(
                f"bad cron expression {expression!r}: {exc} (5 fields: minute hour day month "
                "weekday, or 6 with seconds first)") from None

    def _forward(self, moment: float) -> Iterator[float]:
        """Ticks after ``moment``, strictly increasing. cronsim's Debian rules can answer
        a wall time already passed (the first 02:30 when asked after the second one, at a
        fall-back change): such answers are skipped."""
        last = moment
        for when in self._cronsim(self.expression, datetime.fromtimestamp(moment, self.zone)):
            tick = when.timestamp()
            if tick > last:
                last = tick
                yield tick

    def after(self, moment: float) -> float | None:
        return next(self._forward(moment), None)

    def latest(self, now: float) -> float | None:
        # cronsim's reverse iteration can land an hour early across a fall-back change (it
        # steps in local wall time): it only gives a start, and forward iteration decides.
        start = datetime.fromtimestamp(math.floor(now) + 1, self.zone)
        candidate = _first(self._cronsim(self.expression, start, reverse=True))
        while candidate is not None and candidate > now:  # never seen; a bound all the same
            start -= timedelta(hours=1)
            candidate = _first(self._cronsim(self.expression, start, reverse=True))
        if candidate is None:
            return None
        for tick in self._forward(candidate):
            if tick > now:
                break
            candidate = tick
        return candidate


def _first(iterator: Iterator[datetime]) -> float | None:
    try:
        return next(iterator).timestamp()
    except StopIteration:  # no tick within cronsim's 50-year horizon
        return None


def _zone(tz: str | None) -> Any:
    if tz is None or tz == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {tz!r}: pass an IANA name like 'Europe/Berlin' (on Windows, "
            "pip install tzdata)") from None


def ticks_of(cron: str | None, every: float | None, tz: str | None) -> Ticks:
    """The ticks of ``cron`` or ``every`` (exactly one of them), with a clear error for a
    bad expression, a missing cronsim, an unknown time zone or a ``tz`` given to ``every``."""
    if (cron is None) == (every is None):
        raise ConfigurationError("a schedule takes cron= or every=, exactly one of them")
    if every is not None:
        if tz is not None:
            raise ConfigurationError(
                "tz= applies to cron= schedules only: every= ticks at multiples of its period "
                "in Unix time, the same in every time zone")
        return EveryTicks(every)
    assert cron is not None
    if not isinstance(cron, str):
        raise ConfigurationError(f"cron= takes an expression as a string, not {cron!r}")
    return CronTicks(cron, tz)
