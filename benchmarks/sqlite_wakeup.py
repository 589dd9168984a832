"""`python -m benchmarks.sqlite_wakeup`: how fast an idle waiter in another process learns of
a commit to a SQLite database, and what waiting costs while nothing happens.

For each wake-up mechanism of tinyq_sqlite._wakeup (and one it does not use: inotify on the
``-wal`` file, no explicit notify), with 1 and with 8 waiting processes:

* latency: this process commits a row (WAL, ``BEGIN IMMEDIATE``) every 5-25 ms (random, so
  the commits do not fall in step with a polling interval; ``--gap``), then calls ``notify()``; each
  waiter loops "snapshot, look for new rows, wait" as the broker does, and records when it saw
  each row. p50/p99/max of (seen - commit returned), over all waiters; CLOCK_MONOTONIC
  (``perf_counter``) is one clock for all processes on Linux;
* notify: the time ``notify()`` takes in the writer, p50 (it adds to the writer's latency);
* idle CPU: each waiter waits ``--idle`` seconds with nothing committed and reports its own
  ``process_time`` (all its threads) over that time, as a percentage of one core, and how many
  times it woke (spuriously: nothing was committed);
* seen > 50 ms: rows seen late. With ``--gap 100,200`` a missed wake-up shows as a row seen
  only at the next commit (100-200 ms late) by one waiter; a late row seen late by every
  waiter at once is the machine stalling, not a miss.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("tinyq_sqlite") is None:  # not installed: this checkout's copy
    sys.path.insert(0, str(ROOT / "tinyq-sqlite" / "src"))
KINDS = ["poll-2ms", "poll-5ms", "socket", "inotify", "inotify-wal"]


def make(kind: str, db: str):  # type: ignore[no-untyped-def]  # the module is found at run time
    from tinyq_sqlite._wakeup import InotifyWakeup, open_wakeup

    if kind.startswith("poll-"):
        return open_wakeup(db, kind="poll", interval=float(kind[5:-2]) / 1000)
    if kind == "inotify-wal":
        return InotifyWakeup(db, watch=db + "-wal")
    return open_wakeup(db, kind=kind)


def connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def waiter(kind: str, db: str, mode: str, arg: float) -> None:
    """Runs in a waiting process; prints one JSON line."""
    conn, wake = connect(db), make(kind, db)
    print("ready", flush=True)
    if mode == "idle":
        cpu, end, wakes = time.process_time(), time.monotonic() + arg, 0
        while (left := end - time.monotonic()) > 0:
            wakes += wake.wait(left, wake.generation())  # spurious wakes, if any, are counted
        print(json.dumps({"cpu": (time.process_time() - cpu) / arg, "wakes": wakes}), flush=True)
        return
    seen: dict[int, float] = {}
    last, timeouts = 0, 0
    while last < arg:
        since = wake.generation()  # before the look: a commit after it wakes the wait at once
        (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()
        if top > last:
            now = time.perf_counter()
            seen.update((i, now) for i in range(last + 1, top + 1))
            last = top
        elif not wake.wait(2.0, since):
            timeouts += 1
    print(json.dumps({"seen": seen, "timeouts": timeouts}), flush=True)


def spawn(kind: str, db: str, mode: str, arg: float, n: int) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "tinyq-sqlite" / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sqlite_wakeup", "--waiter", kind, db, mode, str(arg)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # let every listener thread reach its blocking call
    return procs


def results(procs: list[subprocess.Popen[str]]) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=120)
        out.append(json.loads(stdout))
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def measure(
    kind: str, n: int, commits: int, idle: float, folder: str, gap: tuple[float, float]
) -> dict[str, float]:
    db = os.path.join(folder, f"{kind}-{n}.db")
    conn = connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at REAL)")
    wake = make(kind, db)
    procs = spawn(kind, db, "latency", commits, n)
    committed, notify = {}, []
    for i in range(1, commits + 1):
        time.sleep(random.uniform(*gap))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, time.time()))
        conn.execute("COMMIT")
        committed[i] = start = time.perf_counter()
        if kind != "inotify-wal":  # that one relies on the commit's own write to the -wal
            wake.notify()
        notify.append(time.perf_counter() - start)
    out = results(procs)
    lat = [seen - committed[int(i)] for r in out for i, seen in r["seen"].items()]
    procs = spawn(kind, db, "idle", idle, n)
    idle_out = results(procs)
    cpu = [r["cpu"] for r in idle_out]
    wake.close()
    conn.close()
    return {
        "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "max_ms": max(lat) * 1e3,
        "timeouts": sum(r["timeouts"] for r in out),
        "late": sum(x > 0.05 for x in lat),  # with --gap above 50 ms: a wake-up that was missed
        "notify_us": statistics.median(notify) * 1e6,
        "idle_cpu_pct": statistics.mean(cpu) * 100, "idle_cpu_total_pct": sum(cpu) * 100,
        "idle_wakes": sum(r["wakes"] for r in idle_out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waiter", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--waiters", default="1,8", help="numbers of waiting processes")
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle waiting")
    parser.add_argument("--gap", default="5,25", help="ms between commits: min,max")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.waiter:
        kind, db, mode, arg = args.waiter
        waiter(kind, db, mode, float(arg))
        return
    print(f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}, {sys.platform}")
    print("| mechanism | waiters | p50 ms | p99 ms | max ms | notify us | "
          "idle CPU per waiter | idle CPU all | idle wakes | seen > 50 ms | 2 s timeouts |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    low, high = (float(ms) / 1000 for ms in args.gap.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds.split(","):
            for n in map(int, args.waiters.split(",")):
                r = measure(kind, n, args.commits, args.idle, folder, (low, high))
                rows.append({"kind": kind, "waiters": n, **r})
                print(f"| {kind} | {n} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                      f"{r['max_ms']:.1f} | {r['notify_us']:.0f} | {r['idle_cpu_pct']:.2f} % | "
                      f"{r['idle_cpu_total_pct']:.2f} % | {r['idle_wakes']} | {r['late']} | "
                      f"{r['timeouts']} |", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
