"""tinyq-sqlite with real processes on one file: a producer process and two ``tinyq``
worker processes (``-u sqlite:///...``), each job run exactly once; a process whose disk
fills."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from support.environment import child_env
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os
import signal
import time
import tinyq_sqlite.plugin
from tinyq_core import Application

# The plugin named explicitly: the test runs tinyq from source folders, not installed.
app = Application(os.environ["TINYQ_URL"], plugins=[tinyq_sqlite.plugin])
RUNS = os.environ["RUNS"]

@app.task(name="record")
def record(i, seconds=0.0):
    time.sleep(seconds)
    # One short O_APPEND write per run: lines from several processes do not interleave.
    with open(RUNS, "a") as f:
        f.write(f"{i} {os.getpid()}\\n")
    return i

@app.task(name="suicide", max_retries=1)
def suicide():
    with open(RUNS + ".suicides", "a") as f:
        f.write("x")
    os.kill(os.getpid(), signal.SIGKILL)
'''

JOBS = 2000


def _runs(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    return [(int(i), int(pid)) for i, pid in
            (line.split() for line in path.read_text().splitlines() if line)]


def test_two_workers_drain_a_producers_jobs_each_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=5"
    runs = tmp_path / "runs.log"
    env = {"TINYQ_URL": url, "RUNS": str(runs)}
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", APP, env=env) as project:
        producer = subprocess.run(
            [sys.executable, "-c",
             f"from app import record; record.map((i,) for i in range({JOBS}))"],
            cwd=project.path, env=project.env, capture_output=True, text=True, timeout=120)
        assert producer.returncode == 0, producer.stderr
        workers = [project.worker("-u", url, "-w", "4") for _ in range(2)]
        wait_until(lambda: len(_runs(runs)) >= JOBS, 120, message=f"{JOBS} jobs to run")
        outs = [project.stop(worker) for worker in workers]
        for worker, out in zip(workers, outs, strict=True):
            assert worker.returncode == 0, out
            assert "Traceback" not in out and "locked" not in out, out
        done = _runs(runs)
        counts = Counter(i for i, _ in done)
        assert sorted(counts) == list(range(JOBS))
        assert [i for i, n in counts.items() if n > 1] == []  # no kill: nothing twice
        # Both workers took part.
        assert {w.pid for w in workers} == {pid for _, pid in done}
        broker = project.app.broker
        assert broker.size("default") == 0 and broker.count_leased("default") == 0


def test_four_producers_and_two_workers_at_once(tmp_path: Path) -> None:
    """Producers enqueue while workers drain, all on one file: nothing lost, nothing twice,
    and no "database is locked" reaches anyone."""
    url = f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=5"
    runs = tmp_path / "runs.log"
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", APP, env={"TINYQ_URL": url, "RUNS": str(runs)}) as project:
        project.app.broker.ping()  # the file made before four processes race to make it
        workers = [project.worker("-u", url, "-w", "4") for _ in range(2)]
        producers = [subprocess.Popen(
            [sys.executable, "-c", "from app import record\n"
             f"for i in range({p * 500}, {p * 500 + 500}, 10):\n"
             "    record.map((j,) for j in range(i, i + 10))"],
            cwd=project.path, env=project.env, stderr=subprocess.PIPE, text=True)
            for p in range(4)]
        for producer in producers:
            _, err = producer.communicate(timeout=120)
            assert producer.returncode == 0, err
        wait_until(lambda: len(_runs(runs)) >= 2000, 120, message="2,000 jobs to run")
        for worker in workers:
            out = project.stop(worker)
            assert worker.returncode == 0, out
            assert "Traceback" not in out and "locked" not in out, out
        counts = Counter(i for i, _ in _runs(runs))
        assert sorted(counts) == list(range(2000))
        assert [i for i, n in counts.items() if n > 1] == []


def test_a_producer_killed_mid_map_leaves_whole_batches(tmp_path: Path) -> None:
    """SIGKILL while a producer maps batches of 10: each batch is in whole or not at all (one
    transaction), the file is sound, and a worker runs what went in once."""
    url = f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=5"
    runs = tmp_path / "runs.log"
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", APP, env={"TINYQ_URL": url, "RUNS": str(runs)}) as project:
        broker = project.app.broker
        producer = subprocess.Popen(
            [sys.executable, "-c", "from app import record\n"
             "for k in range(100_000):\n"
             "    record.map((k * 10 + j,) for j in range(10))"],
            cwd=project.path, env=project.env)
        wait_until(lambda: broker.size("default") >= 3000, 60, message="3,000 jobs enqueued")
        producer.send_signal(signal.SIGKILL)
        producer.wait()
        with sqlite3.connect(tmp_path / "tinyq.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        enqueued = broker.size("default")
        assert enqueued % 10 == 0
        worker = project.worker("-u", url, "-w", "4")
        wait_until(lambda: len(_runs(runs)) >= enqueued, 60, message="every job to run")
        out = project.stop(worker)
        assert worker.returncode == 0, out
        counts = Counter(i for i, _ in _runs(runs))
        assert sorted(counts) == list(range(enqueued))  # whole batches, in order
        assert set(counts.values()) == {1}


def test_sigkill_mid_batch_loses_no_job(tmp_path: Path) -> None:
    """A worker killed while it holds jobs: the other runs them after their leases expire;
    only what the killed one held can run twice."""
    url = f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=1"
    runs = tmp_path / "runs.log"
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", APP, env={"TINYQ_URL": url, "RUNS": str(runs)}) as project:
        handles = project.app.tasks["record"].map([(i, 0.02) for i in range(300)])
        a = project.worker("-u", url, "-w", "4")
        b = project.worker("-u", url, "-w", "4")
        wait_until(lambda: len(_runs(runs)) >= 60, 30, message="60 jobs to run")
        a.send_signal(signal.SIGKILL)
        wait_until(lambda: {i for i, _ in _runs(runs)} == set(range(300)), 60,
                   message="every job to run")
        assert [h.result(timeout=10) for h in handles] == list(range(300))
        counts = Counter(i for i, _ in _runs(runs))
        twice = [i for i, n in counts.items() if n > 1]
        # Only what the killed worker held: its 4 slots and its prefetch (up to 2 * 4).
        assert len(twice) <= 4 + 2 * 4, twice
        assert b.poll() is None
        out = project.stop(b)
        assert b.returncode == 0, out
        assert "Traceback" not in out
        assert project.app.broker.size("default") == 0


def test_a_job_that_kills_its_worker_ends_in_the_dead_letters(tmp_path: Path) -> None:
    """The delivery count survives lease recovery on the file: the crash-loop rule sees it
    and dead-letters the job instead of running it forever."""
    url = f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=1"
    runs = tmp_path / "runs.log"
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", APP, env={"TINYQ_URL": url, "RUNS": str(runs)}) as project:
        handle = project.app.tasks["suicide"].delay()
        broker = project.app.broker
        deadline = time.monotonic() + 60
        while not broker.dead_letters("default"):
            assert time.monotonic() < deadline, "never dead-lettered"
            proc = project.worker("-u", url, "-w", "1")
            try:
                proc.wait(timeout=5)  # dies in its job, or dead-letters it and idles
            except subprocess.TimeoutExpired:
                project.stop(proc)
        [dead] = broker.dead_letters("default")
        assert "crash loop" in dead.reason
        # As on Redis: max_retries=1, so two deliveries may die, and the third dies too
        # before the rule's limit is reached.
        assert len(Path(f"{runs}.suicides").read_text()) == 3
        assert handle.status() == "failed"


def test_the_cli_says_what_is_wrong_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "notes.db").write_text("not a database")
    with AppProject(tmp_path / "app", APP, env={"TINYQ_URL": "sqlite:///x.db",
                                                "RUNS": str(tmp_path / "runs")}) as project:
        for uri, says in [
            (f"sqlite:///{tmp_path}/missing/tinyq.db", "does not exist (create it first)"),
            (f"sqlite:///{tmp_path}/notes.db", "file is not a database"),
            ("sqlite:///x.db?visiblity_timeout=3", "did you mean visibility_timeout?"),
        ]:
            done = project.run("-u", uri)
            assert done.returncode == 1, done.stderr
            assert says in done.stderr and "Traceback" not in done.stderr, done.stderr


FILL = '''
import resource, signal, sqlite3, sys
from tinyq_core import EnqueueError, Message
from tinyq_sqlite import SqliteBroker

broker = SqliteBroker(sys.argv[1])
broker.ping()
# The disk fills: writes past 1 MB fail with EFBIG (SIGXFSZ ignored, as a daemon would).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
sent = 0
try:
    for i in range(100_000):
        broker.enqueue([Message(f"{i}-{j}", "q", b"x" * 200) for j in range(10)])
        sent += 10
except EnqueueError as exc:
    print("refused after", sent, "|", exc, "|", exc.enqueued_ids)
try:  # a lone job (delay()'s one-statement path), still full
    broker.enqueue([Message("lone", "q", b"x" * 100_000)])  # more than any free page left
    print("lone went in")
except EnqueueError as exc:
    print("lone refused |", exc, "|", exc.enqueued_ids)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
broker.enqueue([Message("after", "q", b"x")])  # space again: usable at once
print("size", broker.size("q"), "sent", sent)
'''


def test_a_disk_that_fills_is_a_clear_error_and_the_queue_works_after(tmp_path: Path) -> None:
    db = tmp_path / "tinyq.db"
    done = subprocess.run([sys.executable, "-c", FILL, f"sqlite:///{db}"], env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    refused, lone, after = done.stdout.splitlines()
    assert refused.startswith("refused after") and "nothing of this operation was stored" in refused
    assert refused.endswith("| []")  # all or none: nothing of the refused batch went in
    assert lone.startswith("lone refused") and lone.endswith("| []"), lone
    sent = int(refused.split()[2])
    assert sent > 0 and after.split() == ["size", str(sent + 1), "sent", str(sent)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_an_idle_worker_process_and_a_waiting_producer_are_woken_across_processes(
        tmp_path: Path) -> None:
    """Round trips through an idle worker process: the enqueue wakes its blocked reserve
    (``jobs``), its stored result wakes this process's ``result()`` (``results``). Without
    the wake-ups, each would wait out its timeout (the worker's blocking reserve lasts 1 s)."""
    url = f"sqlite:///{tmp_path}/tinyq.db"
    runs = tmp_path / "runs.log"
    (tmp_path / "app").mkdir()
    with AppProject(tmp_path / "app", APP, env={"TINYQ_URL": url, "RUNS": str(runs)}) as project:
        record = project.module.record
        worker = project.worker("-u", url, "-w", "2")
        assert record.delay(-1).result(timeout=30) == -1  # the worker is up
        trips = []
        for i in range(20):
            time.sleep(0.05)  # idle again: blocked in reserve
            start = time.monotonic()
            assert record.delay(i).result(timeout=10) == i
            trips.append(time.monotonic() - start)
        out = project.stop(worker)
        assert worker.returncode == 0, out
        trips.sort()
        assert trips[len(trips) // 2] < 0.1, trips  # ~3 ms here; polling-free waits
