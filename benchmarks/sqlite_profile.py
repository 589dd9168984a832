"""`python -m benchmarks.sqlite_profile`: where a tinyq-sqlite enqueue and drain spend their
time, in this process, without Redis (docs/sqlite.md, "Where the time goes").

* enqueue: CPU µs per `delay()` on a SQLite file and on `memory://` (tinyq-core's part above
  the broker), the best and the median of `--rounds`;
* drain: one in-process worker (`--threads`, `burst`) on `--n` jobs: its write transactions
  (how many, jobs per transaction, µs each, their share of the wall time);
* WAL pages: the same enqueue and drain again with SQLite's automatic checkpoint off, so that
  the WAL keeps every page each commit wrote (pages per job).

The numbers are this machine's and its load's: alternate two source trees (PYTHONPATH) and
compare the ranges, never one run.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from . import _sqlite as s

s.ensure_tinyq_sqlite()

import tinyq_sqlite.plugin  # noqa: E402  # after ensure_tinyq_sqlite
from tinyq_core import Application  # noqa: E402
from tinyq_sqlite import _db  # noqa: E402


def _app(uri: str) -> tuple[Application, Any]:
    app = Application(uri, plugins=[tinyq_sqlite.plugin])

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    return app, add


def enqueue_cpu(uri: str, n: int, rounds: int) -> list[float]:
    """CPU µs per `delay()`, one figure a round."""
    app, add = _app(uri)
    add.delay(0, 0)  # connected, the queue's row written
    out = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(n):
            add.delay(i, i)
        out.append((time.process_time() - start) / n * 1e6)
    app.close()
    return out


def drain(uri: str, n: int, threads: int) -> dict[str, float]:
    """Enqueue `n` jobs with `map`, drain them with one burst worker; its write transactions."""
    app, add = _app(uri)
    for start in range(0, n, 1000):
        add.map([(i, i) for i in range(start, min(n, start + 1000))])
    count, spent = 0, 0.0
    write = _db.Database.write

    def timed(self: _db.Database, work: Callable[..., Any], *, durable: bool = False) -> Any:
        nonlocal count, spent
        t0 = time.perf_counter()
        try:
            return write(self, work, durable=durable)
        finally:
            count, spent = count + 1, spent + time.perf_counter() - t0

    _db.Database.write = timed  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        app.worker(concurrency=threads).run(burst=True)
        wall = time.perf_counter() - t0
    finally:
        _db.Database.write = write  # type: ignore[method-assign]
        app.close()
    return {"jobs/s": n / wall, "transactions": count, "jobs/transaction": n / max(count, 1),
            "µs/transaction": spent / max(count, 1) * 1e6, "% of wall": spent / wall * 100}


def wal_pages(folder: str, n: int, threads: int) -> tuple[float, float]:
    """WAL pages written per enqueued job (`delay()`) and per drained job."""
    setup = _db.Database._setup

    def no_checkpoint(self: _db.Database, conn: sqlite3.Connection) -> None:
        setup(self, conn)
        conn.execute("PRAGMA wal_autocheckpoint=0")

    def pages(path: str) -> float:
        size = os.path.getsize(f"{path}-wal") if os.path.exists(f"{path}-wal") else 32
        return (size - 32) / (4096 + 24)  # the WAL's header, then a page and its header each

    _db.Database._setup = no_checkpoint  # type: ignore[method-assign]
    try:
        path = os.path.join(folder, "pages.db")
        app, add = _app(f"sqlite:///{path}")
        add.delay(0, 0)
        before = pages(path)
        for i in range(n):
            add.delay(i, i)
        per_enqueue = (pages(path) - before) / n
        before = pages(path)
        app.worker(concurrency=threads).run(burst=True)
        per_drained = (pages(path) - before) / (n + 1)
        app.close()  # the last connection's close checkpoints: read before
    finally:
        _db.Database._setup = setup  # type: ignore[method-assign]
    return per_enqueue, per_drained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="jobs drained")
    parser.add_argument("--enqueues", type=int, default=2_000, help="delay() calls a round")
    parser.add_argument("--rounds", type=int, default=5, help="enqueue rounds")
    parser.add_argument("--threads", type=int, default=s.THREADS, help="worker threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinyq-profile-") as folder:
        for name, uri in (("sqlite://", f"sqlite:///{folder}/enqueue.db"),
                          ("memory://", "memory://")):
            cpu = enqueue_cpu(uri, args.enqueues, args.rounds)
            print(f"enqueue on {name}: CPU µs per delay(): best {min(cpu):.0f}, "
                  f"median {statistics.median(cpu):.0f}")
        figures = drain(f"sqlite:///{folder}/drain.db", args.n, args.threads)
        print(f"drain of {args.n:,} jobs, -w {args.threads}: " + ", ".join(
            f"{value:,.1f} {name}" for name, value in figures.items()))
        per_enqueue, per_drained = wal_pages(folder, min(args.n, 5_000), args.threads)
        print(f"WAL pages: {per_enqueue:.2f} per delay(), {per_drained:.2f} per drained job")


if __name__ == "__main__":
    main()
