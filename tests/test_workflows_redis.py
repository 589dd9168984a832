"""Workflows on a real redis-server with real worker processes: a chord of 1,000 members
whose workers are SIGKILLed at random calls back exactly once with every member's value, and
a chain runs on."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyq_core import chain, chord

from redis_server import RedisServer
from support.project import AppProject

APP = '''
import json, os, random, time
import redis
from tinyq_core import Application, current_job

URL = os.environ["TINYQ_URL"]
app = Application(URL)
r = redis.Redis.from_url(URL.split("?")[0])
NS = os.environ["NS"]

# Retries allowed: a job delivered more than max_retries + 2 times without finishing is taken
# for a crash loop, and under load (a lease of 1 s) a member may lose a lease or two besides
# its worker's kills.
@app.task(name="member", max_retries=10)
def member(i):
    time.sleep(random.uniform(0.02, 0.06))
    return i * i

@app.task(name="collect", max_retries=10)
def collect(values):
    # Each run recorded with its attempt: a run killed after this line runs again, as any
    # job, a later attempt of the same message (prefetched by a killed worker counts too).
    job = current_job()
    r.rpush(f"{NS}:calls", json.dumps([job.id, job.attempt, len(values), sum(values),
                                       values[:3]]))
    return sum(values)

@app.task(name="add")
def add(x, y):
    return x + y
'''

MEMBERS = 1000


@pytest.fixture
def own_server_project(tmp_path: Path) -> Iterator[AppProject]:
    """On a server of its own: worker processes calling scripts would disturb the tests that
    flush the shared server's scripts and count NOSCRIPT errors."""
    server = RedisServer().start()
    try:
        p = AppProject(tmp_path, APP, url=server.url)
        yield p
        p.close()
    finally:
        server.stop(kill=True)


@pytest.mark.redis
@pytest.mark.process
def test_a_chord_under_random_sigkills_calls_back_exactly_once(
    own_server_project: AppProject,
) -> None:
    project = own_server_project
    tasks = project.app.tasks
    handle = chord([tasks["member"].s(i) for i in range(MEMBERS)], tasks["collect"].s()).delay()
    workers = [project.worker("-w", "4") for _ in range(3)]
    calls_key = f"{project.ns}:calls"
    rng = random.Random()
    kills = 0
    killing_until = time.monotonic() + 25
    while time.monotonic() < killing_until:
        time.sleep(rng.uniform(0.5, 1.0))
        if project.redis.llen(calls_key):
            break
        victim = rng.randrange(len(workers))
        workers[victim].kill()  # SIGKILL: no outcome sent, its jobs' leases run out
        workers[victim].wait()
        kills += 1
        workers[victim] = project.worker("-w", "4")
    # Then no more kills: what is left (redelivered members, visibility_timeout 1 s) finishes.
    expected = sum(i * i for i in range(MEMBERS))
    assert handle.result(40) == expected, f"after {kills} kills"
    time.sleep(3)  # a second callback, if one were enqueued, would have run by now
    calls = [json.loads(c) for c in project.redis.lrange(calls_key, 0, -1)]
    # One callback message: its runs (one, or more when a kill landed between its record and
    # its ack) are deliveries of it, their attempts counting on; a second message would start
    # again from attempt 1.
    attempts = [c[1] for c in calls]
    assert len({c[0] for c in calls}) == 1 and attempts == sorted(set(attempts)), calls
    assert all(c[2:] == [MEMBERS, expected, [0, 1, 4]] for c in calls)  # every value, in order
    assert kills >= 3  # the kills did happen while the chord ran


@pytest.mark.redis
@pytest.mark.process
def test_a_chain_runs_on_worker_processes(own_server_project: AppProject) -> None:
    project = own_server_project
    add = project.app.tasks["add"]
    worker = project.worker("-w", "2")
    handle = chain(add.s(1, 2), add.s(10), add.s(100)).delay()
    assert handle.result(30) == 113
    project.stop(worker)
