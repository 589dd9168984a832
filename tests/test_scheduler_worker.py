"""The scheduler in a real worker thread on the memory broker, ``scheduler=False``, a broker
without the tier, and ``tinyq schedules`` run in this process."""

from __future__ import annotations

import argparse
import logging
import threading

import pytest
from test_contract_tiers import RequiredOnlyBroker

from tinyq_core import Application, current_job
from tinyq_core._cli.schedules import run_schedules
from tinyq_core._schedules import SCHEDULE_HEADER, Schedule
from tinyq_memory import FakeClock, MemoryBroker

from support.waiting import wait_until
from support.worker_thread import running_worker


def hourly(app: Application) -> Schedule:
    return app.schedule("job", every=3600, name="hourly")


# -- a real worker --------------------------------------------------------------------------

def test_a_worker_runs_a_schedule_and_tells_the_job_its_schedule() -> None:
    app = Application("memory://")
    seen: list[tuple[str, str]] = []

    @app.task(name="beat", every=0.2)
    def beat() -> None:
        job = current_job()
        seen.append((job.id, job.headers[SCHEDULE_HEADER]))

    with running_worker(app, concurrency=2):
        wait_until(lambda: len(seen) >= 3, 10, message="three runs")
    ids = [job_id for job_id, _ in seen]
    assert len(set(ids)) == len(ids)
    assert {header for _, header in seen} == {"beat"}
    assert all(job_id.startswith("beat@") for job_id in ids)


def test_a_worker_without_its_scheduler_enqueues_nothing() -> None:
    app = Application("memory://")

    @app.task(name="beat", every=0.1)
    def beat() -> None: ...

    with running_worker(app, scheduler=False) as worker:
        wait_until(lambda: worker.heartbeat is not None, message="the worker to start")
        threading.Event().wait(0.6)
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    assert broker.last_ticks("default", ["beat"]) == {}
    assert worker.processed == 0


# -- tinyq schedules, in this process ------------------------------------------------------

def test_tinyq_schedules_prints_a_table_a_note_or_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(json=False)
    empty = Application("memory://")
    assert run_schedules(empty, args) == 0
    assert "No schedules on this application" in capsys.readouterr().out

    app = Application("memory://")
    hourly(app)
    run_schedules(app, args)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "QUEUE", "WHEN", "NEXT", "RUN", "LAST", "TICK"]
    assert lines[1].split()[:5] == ["hourly", "job", "default", "every", "3600s"]
    assert lines[1].endswith(" -")  # no tick recorded yet

    bare = Application(RequiredOnlyBroker(FakeClock()))
    hourly(bare)
    run_schedules(bare, args)
    assert "keeps no schedule records: workers do not run these" in capsys.readouterr().out


def test_a_broker_without_schedule_records_runs_workers_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(RequiredOnlyBroker(FakeClock()))
    hourly(app)
    with caplog.at_level(logging.WARNING, logger="tinyq.worker"):
        with running_worker(app):
            wait_until(lambda: "keeps no schedule records" in caplog.text,
                       message="the warning")
    assert "1 schedule(s) not run: the broker RequiredOnlyBroker" in caplog.text
