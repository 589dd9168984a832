"""The hello world of tinyq on Redis: the README's example in one script.

    redis-server &              # or any Redis; TINYQ_URL=redis://host:port/0 points elsewhere
    python examples/redis_hello.py

Starts a worker process first, ``tinyq -a redis_hello.app -w 4``, then enqueues 30 jobs from
this process, prints every result, and stops the worker as Ctrl+C does. ``$TINYQ_URL``, when
set, overrides the ``redis://`` below in both processes (docs/worker.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tinyq_core import Application

app = Application("redis://")


@app.task(name="add")  # named: this file runs as __main__ here and as ``redis_hello`` there
def add(m: int, n: int) -> int:
    return m + n


def main() -> None:
    here = str(Path(__file__).resolve().parent)  # where the worker imports redis_hello from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tinyq_core", "-a", "redis_hello.app", "-w", "4", "-l", "info"],
        env=env,
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
