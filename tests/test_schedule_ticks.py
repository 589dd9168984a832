"""When schedules tick (every, cron, time zones and DST changes), and how they are registered."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tinyq_core import Application, ConfigurationError, SerializationError
from tinyq_core._schedules import SCHEDULE_HEADER, TICK_HEADER
from tinyq_core._ticks import CronTicks, EveryTicks, ticks_of

DOCS = Path(__file__).resolve().parents[1] / "docs"


def utc(*fields: int) -> float:
    return datetime(*fields, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


def ticks_between(ticks: CronTicks | EveryTicks, start: float, end: float) -> list[float]:
    out, moment = [], start
    while (moment := ticks.after(moment)) is not None and moment <= end:  # type: ignore[assignment]
        out.append(moment)
    return out


def hours(ticks: list[float]) -> list[str]:
    return [datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M") for t in ticks]


def check_latest_agrees(ticks: CronTicks, start: float, end: float) -> None:
    """latest(now) is the last tick at or before now, minute by minute."""
    expected = ticks_between(ticks, start - 86400 * 2, end)
    for now in range(int(start), int(end), 60):
        assert ticks.latest(now) == max(t for t in expected if t <= now), now


# -- every ----------------------------------------------------------------------------------

def test_every_ticks_at_multiples_of_its_period_in_unix_time() -> None:
    ticks = EveryTicks(30)
    assert ticks.latest(1_000_000_020.0) == 1_000_000_020.0
    assert ticks.latest(1_000_000_049.9) == 1_000_000_020.0
    assert ticks.after(1_000_000_020.0) == 1_000_000_050.0  # strictly after
    assert ticks.after(1_000_000_032.5) == 1_000_000_050.0
    assert EveryTicks(0.25).after(1.1) == 1.25


def test_every_takes_a_timedelta_and_refuses_nonsense() -> None:
    app = Application("memory://")
    schedule = app.schedule("t", every=timedelta(minutes=1))
    assert schedule.every == 60.0
    assert schedule.next_tick(utc(2024, 1, 1, 0, 0, 30)) == utc(2024, 1, 1, 0, 1)
    for bad in (0, -5, float("nan"), "60"):
        with pytest.raises(ConfigurationError, match="every="):
            ticks_of(None, bad, None)  # type: ignore[arg-type]


# -- cron -----------------------------------------------------------------------------------

def test_cron_in_utc_with_five_or_six_fields() -> None:
    five = CronTicks("*/15 * * * *", None)
    assert five.after(utc(2024, 5, 1, 10, 7)) == utc(2024, 5, 1, 10, 15)
    assert five.latest(utc(2024, 5, 1, 10, 15)) == utc(2024, 5, 1, 10, 15)  # at or before
    assert five.latest(utc(2024, 5, 1, 10, 14, 59)) == utc(2024, 5, 1, 10, 0)
    six = CronTicks("*/10 * * * * *", None)  # seconds first
    assert six.after(utc(2024, 5, 1, 10, 7, 3)) == utc(2024, 5, 1, 10, 7, 10)


def test_cron_in_a_time_zone() -> None:
    daily = CronTicks("0 3 * * *", "Europe/Berlin")
    assert daily.after(utc(2024, 1, 10)) == utc(2024, 1, 10, 2)  # CET: UTC+1
    assert daily.after(utc(2024, 7, 10)) == utc(2024, 7, 10, 1)  # CEST: UTC+2


# Europe/Berlin: 2024-03-31 02:00 CET -> 03:00 CEST at 01:00 UTC (spring forward);
# 2024-10-27 03:00 CEST -> 02:00 CET at 01:00 UTC (fall back).

def test_dst_spring_forward_a_fixed_time_in_the_skipped_hour_runs_at_its_end() -> None:
    ticks = CronTicks("30 2 * * *", "Europe/Berlin")
    got = ticks_between(ticks, utc(2024, 3, 30, 12), utc(2024, 4, 1, 12))
    # 02:30 CET on the 30th, then 03:00 CEST (02:30 does not exist), then 02:30 CEST.
    assert got == [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)]
    check_latest_agrees(ticks, utc(2024, 3, 30, 22), utc(2024, 3, 31, 4))


def test_dst_spring_forward_hourly_follows_real_time() -> None:
    ticks = CronTicks("0 * * * *", "Europe/Berlin")
    got = ticks_between(ticks, utc(2024, 3, 30, 22, 30), utc(2024, 3, 31, 3))
    assert hours(got) == ["23:00", "00:00", "01:00", "02:00", "03:00"]  # one an hour
    check_latest_agrees(ticks, utc(2024, 3, 30, 22), utc(2024, 3, 31, 4))


def test_dst_fall_back_a_fixed_time_in_the_repeated_hour_runs_once() -> None:
    ticks = CronTicks("30 2 * * *", "Europe/Berlin")
    got = ticks_between(ticks, utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))
    assert got == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]  # the first 02:30
    check_latest_agrees(ticks, utc(2024, 10, 26, 22), utc(2024, 10, 27, 4))


def test_dst_fall_back_hourly_runs_in_both_repeated_hours() -> None:
    ticks = CronTicks("0 * * * *", "Europe/Berlin")
    got = ticks_between(ticks, utc(2024, 10, 26, 22, 30), utc(2024, 10, 27, 3))
    # 02:00 CEST (00:00 UTC) and 02:00 CET (01:00 UTC): still one an hour of real time.
    assert hours(got) == ["23:00", "00:00", "01:00", "02:00", "03:00"]
    check_latest_agrees(ticks, utc(2024, 10, 26, 22), utc(2024, 10, 27, 4))


def test_dst_in_new_york() -> None:
    # 2024-03-10 02:00 EST -> 03:00 EDT at 07:00 UTC; 2024-11-03 02:00 EDT -> 01:00 EST.
    spring = CronTicks("30 2 * * *", "America/New_York")
    assert ticks_between(spring, utc(2024, 3, 9, 12), utc(2024, 3, 10, 12)) == [
        utc(2024, 3, 10, 7)]  # 03:00 EDT
    fall = CronTicks("30 1 * * *", "America/New_York")
    assert ticks_between(fall, utc(2024, 11, 2, 12), utc(2024, 11, 3, 12)) == [
        utc(2024, 11, 3, 5, 30)]  # the first 01:30 (EDT), once


# -- errors ---------------------------------------------------------------------------------

def test_bad_schedules_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="bad cron expression '61 \\* \\* \\* \\*'"):
        ticks_of("61 * * * *", None, None)
    with pytest.raises(ConfigurationError, match="bad cron expression"):
        ticks_of("* * *", None, None)
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        ticks_of("0 * * * *", None, "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="exactly one"):
        ticks_of("0 * * * *", 60, None)
    with pytest.raises(ConfigurationError, match="exactly one"):
        ticks_of(None, None, None)
    with pytest.raises(ConfigurationError, match="tz= applies to cron="):
        ticks_of(None, 60, "Europe/Berlin")


def test_cron_without_cronsim_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cronsim", None)  # import fails
    with pytest.raises(ConfigurationError, match=r"pip install 'tinyq-core\[cron\]'"):
        Application("memory://").schedule("t", cron="0 * * * *")
    Application("memory://").schedule("t", every=60)  # every= needs nothing


# -- registration ---------------------------------------------------------------------------

def test_task_options_and_app_schedule_register_schedules() -> None:
    app = Application("memory://")

    @app.task(name="report", queue="reports", cron="0 3 * * *", tz="Europe/Berlin",
              catch_up=False)
    def report(kind: str = "daily") -> str:
        return kind

    weekly = app.schedule(report, cron="0 4 * * MON", args=("weekly",), name="report-weekly")
    [first, second] = list(app.schedule_registry)[:2]
    assert (first.name, first.task_name, first.queue, first.cron, first.tz, first.catch_up) == (
        "report", "report", "reports", "0 3 * * *", "Europe/Berlin", False)
    assert second is weekly and weekly.args == ("weekly",) and weekly.queue == "reports"
    assert app.schedule("report", every=10, name="by-name").queue == "reports"  # the task's
    by_name = app.schedule("elsewhere.task", every=10)  # not registered: the default queue
    assert (by_name.task_name, by_name.queue) == ("elsewhere.task", "default")


def test_a_duplicate_schedule_name_is_an_error() -> None:
    app = Application("memory://")

    @app.task(name="tick", every=60)
    def tick() -> None: ...

    with pytest.raises(ConfigurationError, match="a schedule named 'tick' is registered"):
        app.schedule(tick, every=30)
    app.schedule(tick, every=30, name="tick-fast")  # another name: fine
    assert [s.name for s in app.schedule_registry] == ["tick", "tick-fast"]


def test_arguments_the_serializer_refuses_fail_at_registration() -> None:
    app = Application("memory://")
    with pytest.raises(SerializationError):
        app.schedule("t", every=60, args=(object(),))
    assert len(app.schedule_registry) == 0


def test_a_ticks_job_is_named_after_the_schedule_and_the_tick() -> None:
    app = Application("memory://")
    schedule = app.schedule("t", every=60, kwargs={"n": 1}, name="minutely")
    job = schedule.job(1_700_000_040.0)
    assert job.id == "minutely@1700000040000"
    assert (job.task_name, job.kwargs, job.queue) == ("t", {"n": 1}, "default")
    assert job.headers == {SCHEDULE_HEADER: "minutely", TICK_HEADER: "1700000040.0"}


def test_the_first_example_of_scheduling_md_registers_what_it_says() -> None:
    text = (DOCS / "scheduling.md").read_text()
    block = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)[0]
    namespace: dict[str, Any] = {"__name__": "app"}
    exec(block.replace('Application("redis://")', 'Application("memory://")'), namespace)
    schedules = {s.name: s for s in namespace["app"].schedule_registry}
    assert sorted(schedules) == ["app.nightly_report", "app.poll_feeds", "app.sync_accounts",
                                 "billing.close_month", "weekly-report"]
    assert schedules["weekly-report"].args == ("weekly",)
    assert schedules["app.nightly_report"].catch_up is False


def test_a_task_whose_schedule_is_refused_is_not_registered() -> None:
    app = Application("memory://")
    with pytest.raises(ConfigurationError):
        @app.task(name="nightly", cron="not a cron")
        def nightly() -> None: ...

    assert "nightly" not in app.tasks  # the decorator failed: nothing half-registered

    @app.task(name="nightly", cron="0 3 * * *")  # so the corrected code can register it
    def nightly_again() -> None: ...

    assert [info.schedule.name for info in app.schedules()] == ["nightly"]
