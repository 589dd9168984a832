"""Concurrency and rate limits on one SQLite file shared by two ``tinyq`` worker processes:
the limits' state is in the file, so it holds across processes (sampled inside the task under
a file lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.project import AppProject
from support.waiting import wait_until

APP = '''
import fcntl, os, time
from tinyq_core import Application
import tinyq_sqlite.plugin

app = Application(os.environ["TINYQ_URL"], plugins=[tinyq_sqlite.plugin])
COUNTER, SAMPLES = os.environ["COUNTER"], os.environ["SAMPLES"]

def count(delta):
    with open(COUNTER, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        now = int(f.read() or 0) + delta
        f.seek(0)
        f.truncate()
        f.write(str(now))
    if delta > 0:
        with open(SAMPLES, "a") as f:
            f.write(f"{now} {os.getpid()} {time.time()!r}\\n")

@app.task(name="busy", concurrency=2)
def busy(n):
    count(1)
    time.sleep(0.2)
    count(-1)

@app.task(name="tick", rate_limit="5/s")
def tick(n):
    count(1)
    count(-1)
'''


def _samples(path: Path) -> list[tuple[int, int, float]]:
    if not path.exists():
        return []
    return [(int(n), int(pid), float(at)) for n, pid, at in
            (line.split() for line in path.read_text().splitlines() if line)]


def _project(tmp_path: Path) -> AppProject:
    (tmp_path / "app").mkdir()
    env = {"TINYQ_URL": f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=2",
           "COUNTER": str(tmp_path / "counter"), "SAMPLES": str(tmp_path / "samples")}
    return AppProject(tmp_path / "app", APP, env=env)


def _enqueue(project: AppProject, task: str, jobs: int) -> None:
    done = subprocess.run([sys.executable, "-c", f"from app import {task}; "
                           f"{task}.map(range({jobs}))"], cwd=project.path, env=project.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_concurrency_two_across_three_sqlite_worker_processes(tmp_path: Path) -> None:
    """Three processes of one thread each: a limit kept per process would let three run at
    once; the shared one lets two, and the jobs run in more than one process."""
    with _project(tmp_path) as project:
        _enqueue(project, "busy", 16)
        workers = [project.worker("-w", "1") for _ in range(3)]
        samples = tmp_path / "samples"
        wait_until(lambda: len(_samples(samples)) >= 16, 120, message="16 jobs to run")
        for worker in workers:
            out = project.stop(worker)
            assert "Traceback" not in out, out
        found = _samples(samples)
        assert len(found) == 16
        assert max(n for n, _, _ in found) == 2  # never 3, though 3 threads could
        assert len({pid for _, pid, _ in found}) >= 2  # not one process alone


def test_a_rate_across_two_sqlite_worker_processes(tmp_path: Path) -> None:
    with _project(tmp_path) as project:
        _enqueue(project, "tick", 11)
        workers = [project.worker("-w", "4") for _ in range(2)]
        samples = tmp_path / "samples"
        wait_until(lambda: len(_samples(samples)) >= 11, 120, message="11 jobs to run")
        for worker in workers:
            project.stop(worker)
        starts = sorted(at for _, _, at in _samples(samples))
        # Slots 0.2 s apart: 11 starts span 2 s (a worker polling late only adds to it).
        assert starts[-1] - starts[0] >= 2.0 - 0.05
        assert len(starts) == 11
