"""``tinyq schedules``: the application's periodic schedules, their next run and the last tick
the broker recorded (the last one enqueued, or passed over at a first start)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .._app import Application
from .._control_interfaces import ScheduleRecords
from .._schedules import ScheduleInfo
from .output import print_out, table

NOTE_NONE = "No schedules on this application (@app.task(cron=... | every=...), app.schedule)."


def as_json(info: ScheduleInfo) -> dict[str, Any]:
    s = info.schedule
    return {"name": s.name, "task": s.task_name, "queue": s.queue, "cron": s.cron,
            "every": s.every, "tz": s.tz, "catch_up": s.catch_up, "next_run": info.next_run,
            "last_tick": info.last_tick}


def local(when: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS`` (one width: the columns line up)."""
    return "-" if when is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def run_schedules(app: Application, args: argparse.Namespace) -> int:
    infos = app.schedules()
    rows = [(i.schedule.name, i.schedule.task_name, i.schedule.queue, i.schedule.spec,
             local(i.next_run), local(i.last_tick)) for i in infos]
    text = (table(("NAME", "TASK", "QUEUE", "WHEN", "NEXT RUN", "LAST TICK"), rows)
            if infos else NOTE_NONE)
    if infos and not isinstance(app.broker, ScheduleRecords):
        text += (f"\n(the broker {type(app.broker).__name__} keeps no schedule records: "
                 "workers do not run these)")
    print_out(args.json, [as_json(i) for i in infos], text)
    return 0
