"""Wake-ups across processes for the SQLite broker (tinyq_sqlite._wakeup): a commit and a
notify in one process wake waiters in others early, with every mechanism this machine has."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tinyq_sqlite._wakeup import InotifyWakeup, open_wakeup

from support.environment import child_env

SQLITE_SRC = Path(__file__).resolve().parents[1] / "tinyq-sqlite" / "src"
KINDS = [
    pytest.param("inotify", marks=pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="inotify is Linux only")),
    "socket",
    "poll",
]

# Run in the other processes: "notify" commits a row, notifies, prints when its commit
# returned, then stays alive (its exit must not be what wakes anyone); "wait" waits in two
# threads on one Wakeup and prints, for each, whether it woke and when.
CHILD = """
import json, sqlite3, sys, threading, time
from tinyq_sqlite._wakeup import InotifyWakeup, open_wakeup
mode, kind, db = sys.argv[1:4]
wake = open_wakeup(db, kind=kind, interval=0.005)
if mode == "notify":
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (NULL)")
    conn.execute("COMMIT")
    committed = time.perf_counter()
    wake.notify()
    print(committed, flush=True)
    time.sleep(float(sys.argv[4]))
else:
    since = wake.generation()
    woke = []
    def wait():
        woke.append((wake.wait(5.0, since), time.perf_counter()))
    threads = [threading.Thread(target=wait) for _ in range(2)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()
    print(json.dumps(woke), flush=True)
"""


def start_child(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)], stdout=subprocess.PIPE, text=True,
        env=child_env(path=[SQLITE_SRC]))


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "queue.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.close()
    return path


def rows(db: str) -> int:
    with sqlite3.connect(db) as conn:
        count: int = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    return count


@pytest.mark.process
@pytest.mark.parametrize("kind", KINDS)
def test_a_commit_in_another_process_wakes_the_waiter_early(db: str, kind: str) -> None:
    wake = open_wakeup(db, kind=kind)
    assert wake.kind == kind
    since = wake.generation()
    child = start_child("notify", kind, db, 5)
    try:
        woke = wake.wait(5.0, since)
        woke_at = time.perf_counter()
        assert child.stdout is not None
        committed = float(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
        wake.close()
    assert woke and rows(db) == 1
    assert woke_at - committed < 0.5  # of a 5 s timeout: woken by the commit, not the clock


@pytest.mark.parametrize("kind", KINDS)
def test_waiting_with_nothing_happening_times_out(db: str, kind: str) -> None:
    wake = open_wakeup(db, kind=kind)
    try:
        start = time.monotonic()
        assert wake.wait(0.3, wake.generation()) is False
        assert 0.3 <= time.monotonic() - start < 1.0
    finally:
        wake.close()


@pytest.mark.process
@pytest.mark.parametrize("kind", KINDS)
def test_a_notify_between_the_snapshot_and_the_wait_is_not_lost(db: str, kind: str) -> None:
    """The race a broker has: it looked at the table (empty), then a job came, then it waits."""
    wake = open_wakeup(db, kind=kind)
    try:
        since = wake.generation()  # taken before "looking at the table"
        child = start_child("notify", kind, db, 0)
        child.communicate(timeout=30)  # committed and notified, before we start waiting
        time.sleep(0.05)  # the listener thread has seen the event by now; wait must not miss it
        start = time.monotonic()
        assert wake.wait(5.0, since) is True
        assert time.monotonic() - start < 0.1
    finally:
        wake.close()


@pytest.mark.process
@pytest.mark.parametrize("kind", KINDS)
def test_one_notify_wakes_every_waiter_in_every_process(db: str, kind: str) -> None:
    waiters = [start_child("wait", kind, db) for _ in range(4)]
    wake = open_wakeup(db, kind=kind)
    try:
        for child in waiters:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.1)  # their threads are in wait()
        with sqlite3.connect(db, isolation_level=None) as conn:  # a writer: commit, notify
            conn.execute("INSERT INTO t VALUES (NULL)")
        notified = time.perf_counter()
        wake.notify()
        woke = [json.loads(child.communicate(timeout=30)[0]) for child in waiters]
    finally:
        for child in waiters:
            child.kill()
            child.wait()
        wake.close()
    assert len(woke) == 4 and all(len(threads) == 2 for threads in woke)
    for threads in woke:
        for was_woken, at in threads:
            assert was_woken and at - notified < 0.5


@pytest.mark.process
@pytest.mark.parametrize("kind", ["inotify", "socket"])
def test_a_killed_waiter_leaves_nothing_that_breaks_notify(
    db: str, kind: str, tmp_path: Path
) -> None:
    if kind == "inotify" and not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    dead = start_child("wait", kind, db)
    assert dead.stdout is not None and dead.stdout.readline().strip() == "ready"
    folder = Path(db + ".wake")
    before = set(os.listdir(folder))
    dead.send_signal(signal.SIGKILL)  # no close(): its socket file stays behind
    dead.wait()
    wake, other = open_wakeup(db, kind=kind), open_wakeup(db, kind=kind)
    try:
        since = other.generation()
        woke: list[bool] = []
        thread = threading.Thread(target=lambda: woke.append(other.wait(5.0, since)))
        thread.start()
        start = time.monotonic()
        wake.notify()
        thread.join(5)
        assert woke == [True] and time.monotonic() - start < 0.5
    finally:
        wake.close()
        other.close()
    if kind == "socket":
        assert any(name.endswith(".sock") for name in before)  # the dead one's was there
        time.sleep(0.1)  # the listeners' threads remove their own sockets on close
        assert not [name for name in os.listdir(folder) if name.endswith(".sock")]


def test_a_forked_child_waits_with_its_own_listener(db: str) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    wake = open_wakeup(db)
    wake.generation()  # opened, listener running, in the parent
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: woken by the parent's notify through its own resources
        os.close(read_end)
        since = wake.generation()
        os.write(write_end, b"r")
        os._exit(0 if wake.wait(5.0, since) else 1)
    os.close(write_end)
    try:
        assert os.read(read_end, 1) == b"r"
        time.sleep(0.05)
        start = time.monotonic()
        with sqlite3.connect(db, isolation_level=None) as conn:
            conn.execute("INSERT INTO t VALUES (NULL)")
        wake.notify()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0 and time.monotonic() - start < 1.0
    finally:
        os.close(read_end)
        wake.close()


def test_without_inotify_the_choice_falls_back_to_sockets(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fs.inotify.max_user_instances used up: inotify_init1 fails with EMFILE."""
    def used_up(self: InotifyWakeup) -> int:
        raise OSError(errno.EMFILE, "inotify_init1")

    monkeypatch.setattr(InotifyWakeup, "_open", used_up)
    wake = open_wakeup(db)
    try:
        assert wake.kind == ("socket" if hasattr(socket, "AF_UNIX") else "poll")
    finally:
        wake.close()
    with pytest.raises(OSError):
        open_wakeup(db, kind="inotify")  # forced: the error, not a silent fallback


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux /proc")
def test_sockets_beside_a_database_deeper_than_a_socket_path_allows(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    db = str(deep / "queue.db")
    assert len(db) > 110  # sun_path holds 108 bytes
    wake, other = open_wakeup(db, kind="socket"), open_wakeup(db, kind="socket")
    try:
        since = other.generation()
        wake.notify()
        start = time.monotonic()
        assert other.wait(5.0, since) and time.monotonic() - start < 0.5
    finally:
        wake.close()
        other.close()


@pytest.mark.parametrize("kind", ["inotify", "socket"])
def test_a_notify_wakes_its_own_channel_only(db: str, kind: str) -> None:
    """A result stored does not wake idle workers waiting for jobs (nor the other way)."""
    if kind == "inotify" and not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    results = open_wakeup(db, "results", kind=kind)
    jobs, jobs_writer = open_wakeup(db, "jobs", kind=kind), open_wakeup(db, "jobs", kind=kind)
    try:
        since_jobs = jobs.generation()
        results.notify()
        assert jobs.wait(0.3, since_jobs) is False
        jobs_writer.notify()
        assert jobs.wait(5.0, since_jobs) is True
    finally:
        for wake in (results, jobs, jobs_writer):
            wake.close()
