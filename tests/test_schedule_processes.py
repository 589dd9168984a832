"""Periodic schedules run by real ``tinyq`` worker processes on a real redis-server: one job
per tick from three racing schedulers (one of them SIGKILLed), catch-up after an outage,
``--no-scheduler``, and ``tinyq schedules``; and two workers racing on one SQLite file."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os
import redis
from tinyq_core import Application, current_job

URL = os.environ["TINYQ_URL"]
app = Application(URL)
r = redis.Redis.from_url(URL.split("?")[0])
NS = os.environ["NS"]

def record():
    job = current_job()
    r.rpush(f"{NS}:runs", f"{job.headers['tinyq-schedule']} {job.headers['tinyq-tick']} "
                          f"{job.attempt}")

@app.task(name="beat", every=1)
def beat():
    record()

@app.task(name="hourly")
def hourly():
    record()

app.schedule(hourly, every=3600, name="hourly-catch-up")
app.schedule(hourly, every=3600, name="hourly-skip", catch_up=False)
app.schedule(hourly, every=3600, name="hourly-new")
'''

CLAIMED = re.compile(r"Schedule beat: enqueued <Job: id: beat@(\d+),")


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url)
    yield p
    p.close()


def runs(p: AppProject, schedule: str) -> list[tuple[float, int]]:
    """(tick, attempt) of each run of ``schedule``, in the order they ran."""
    out = []
    for line in p.redis.lrange(f"{p.ns}:runs", 0, -1):
        name, tick, attempt = line.decode().split()
        if name == schedule:
            out.append((float(tick), int(attempt)))
    return out


def ticks_key(p: AppProject) -> str:
    return f"{{{p.ns}:default}}:ticks"


def test_three_workers_enqueue_one_job_per_second_also_when_one_is_killed(
    project: AppProject,
) -> None:
    workers = [project.worker("-w", "2") for _ in range(3)]
    wait_until(lambda: runs(project, "beat"), 30, message="the first beat")
    first = runs(project, "beat")[0][0]
    wait_until(lambda: any(t >= first + 10 for t, _ in runs(project, "beat")), 20,
               message="ten seconds of beats")
    workers[0].send_signal(signal.SIGKILL)
    wait_until(lambda: any(t >= first + 20 for t, _ in runs(project, "beat")), 20,
               message="twenty seconds of beats")
    time.sleep(2.5)  # a job the killed worker held comes back after its lease (1 s)
    for worker in workers[1:]:
        out = project.stop(worker)
        assert worker.returncode == 0, out
    beats = [(t, a) for t, a in runs(project, "beat") if first <= t < first + 20]
    assert sorted({t for t, _ in beats}) == [first + s for s in range(20)]  # none missed
    # One claim won per tick, across the three workers' logs...
    claims = Counter(int(ms) / 1000 for w in workers
                     for ms in CLAIMED.findall(project.output(w)))
    assert [claims[first + s] for s in range(20)] == [1] * 20
    # ...and so one job: run once, or delivered again after its worker was killed.
    assert max(Counter(t for t, a in beats if a == 1).values()) == 1
    assert len([t for t, a in beats if a > 1]) <= 6  # what the killed worker held


def test_catch_up_after_an_outage_runs_once_and_a_new_schedule_not_at_all(
    project: AppProject,
) -> None:
    now = time.time()
    hour = now - now % 3600
    # The schedules last ran ten hours ago: no worker ran since.
    project.redis.hset(ticks_key(project), mapping={
        "hourly-catch-up": int((hour - 36000) * 1000),
        "hourly-skip": int((hour - 36000) * 1000)})
    worker = project.worker("-w", "1")
    wait_until(lambda: runs(project, "hourly-catch-up"), 30, message="the catch-up run")
    time.sleep(1.5)  # more runs would show by now
    out = project.stop(worker)
    assert worker.returncode == 0, out
    if time.time() - hour >= 3600:
        pytest.skip("an hour began during the test")  # its tick would run too
    assert runs(project, "hourly-catch-up") == [(hour, 1)]  # one run, not ten
    assert runs(project, "hourly-skip") == []
    assert runs(project, "hourly-new") == []
    recorded = project.redis.hgetall(ticks_key(project))
    assert {k.decode(): int(v) for k, v in recorded.items()} == {
        name: int(hour * 1000) for name in ("hourly-catch-up", "hourly-skip", "hourly-new")
    } | {"beat": int(recorded[b"beat"])}

    listed = json.loads(project.run("schedules", "--json").stdout)
    by_name = {s["name"]: s for s in listed}
    assert sorted(by_name) == ["beat", "hourly-catch-up", "hourly-new", "hourly-skip"]
    assert by_name["hourly-skip"]["last_tick"] == hour
    assert by_name["hourly-skip"]["next_run"] == hour + 3600
    assert (by_name["hourly-skip"]["every"], by_name["hourly-skip"]["catch_up"]) == (3600, False)
    table = project.run("schedules").stdout
    assert "hourly-catch-up" in table and "every 3600s" in table and "LAST TICK" in table


def test_a_worker_without_its_scheduler_enqueues_nothing(project: AppProject) -> None:
    worker = project.worker("-w", "1", "--no-scheduler")
    wait_until(lambda: "not run here: --no-scheduler" in project.output(worker), 30,
               message="the worker to start")
    time.sleep(2.5)  # two beats would have run
    out = project.stop(worker)
    assert worker.returncode == 0, out
    assert project.redis.llen(f"{project.ns}:runs") == 0
    assert project.redis.hgetall(ticks_key(project)) == {}


SQLITE_APP = """
import os
import tinyq_sqlite.plugin
from tinyq_core import Application, current_job

app = Application(os.environ["TINYQ_URL"], plugins=[tinyq_sqlite.plugin])

@app.task(name="beat", every=1)
def beat():
    with open(os.environ["RUNS"], "a") as f:  # one O_APPEND write a run
        f.write(current_job().headers["tinyq-tick"] + "\\n")
"""


def test_two_workers_on_one_sqlite_file_enqueue_one_job_per_second(tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    env = {"TINYQ_URL": f"sqlite:///{tmp_path}/tinyq.db", "RUNS": str(runs)}
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", SQLITE_APP, env=env) as project:
        workers = [project.worker("-w", "2") for _ in range(2)]

        def ticks() -> list[float]:
            return [float(t) for t in runs.read_text().split()] if runs.exists() else []

        wait_until(lambda: ticks(), 30, message="the first beat")
        first = ticks()[0]
        wait_until(lambda: max(ticks()) >= first + 6, 20, message="six seconds of beats")
        for worker in workers:
            out = project.stop(worker)
            assert worker.returncode == 0, out
        window = [t for t in ticks() if t < first + 6]
        assert sorted(window) == [first + s for s in range(6)]  # each once, none missed
        claims = Counter(int(ms) / 1000 for w in workers
                         for ms in CLAIMED.findall(project.output(w)))
        assert [claims[first + s] for s in range(6)] == [1] * 6
