"""What the SQLite systems share: one temporary folder for their database files, set by
``__main__`` in the environment so that the worker processes open the same files."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import sys
from pathlib import Path

from . import _common as c

ENV = "TINYQ_BENCH_SQLITE_DIR"  # the temporary folder of the database files, set by __main__
THREADS = 4  # worker threads of one process, the same for tinyq-sqlite and Huey's threads
POLL = 0.005  # seconds: tinyq-sqlite's default poll_interval, and Huey's polling delay here


def ensure_tinyq_sqlite() -> None:
    """tinyq_sqlite from this checkout when it is not installed (here and in the workers)."""
    if importlib.util.find_spec("tinyq_sqlite") is None:
        src = str(c.ROOT / "tinyq-sqlite" / "src")
        sys.path.insert(0, src)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, os.environ.get("PYTHONPATH", "")) if p
        )


def path(name: str) -> Path:
    folder = os.environ.get(ENV)
    if not folder:
        raise RuntimeError(f"{ENV} is not set: run the benchmarks with `python -m benchmarks`")
    return Path(folder) / name


def delete_rows(db: Path, tables: list[str]) -> None:
    """Empty tables of a database no worker uses, through a connection of its own."""
    if not db.exists():
        return
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        conn.execute("BEGIN IMMEDIATE")
        for table in tables:
            if table in have:
                conn.execute(f"DELETE FROM {table}")  # our own table names
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
