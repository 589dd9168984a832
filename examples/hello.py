"""The hello world of tinyq on the embedded default: a SQLite file, no server to start.

    python examples/hello.py

Starts a worker process, ``tinyq -a hello.app -w 4``, enqueues 30 jobs from this process,
prints every result, then stops the worker as Ctrl+C does. Both processes use
``Application()`` with no URI: ``$TINYQ_URL`` when set, else ``tinyq.db`` in the working
directory. On Redis: examples/redis_hello.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tinyq_core import Application

app = Application()


@app.task(name="add")  # named: this file runs as __main__ here and as ``hello`` in the worker
def add(m: int, n: int) -> int:
    return m + n


def main() -> None:
    # The worker imports this file as the module ``hello``; it runs in this working
    # directory, so both processes open the same tinyq.db.
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tinyq_core", "-a", "hello.app", "-w", "4", "-l", "info"], env=env
    )
    try:
        jobs = [(m, n) for m in range(10) for n in range(3)]
        handles = [add.delay(m, n) for m, n in jobs]
        print(f"enqueued {len(handles)} jobs on {app.broker!r}")
        for h, (m, n) in zip(handles, jobs, strict=True):
            print(f"add({m}, {n}) = {h.result(timeout=30)}")
    finally:
        worker.send_signal(signal.SIGINT)  # a warm shutdown, as Ctrl+C
        worker.wait(timeout=30)
    print("all 30 jobs done")


if __name__ == "__main__":
    main()
