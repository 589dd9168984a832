"""`python -m benchmarks.sqlite_worker`: what an idle ``tinyq`` worker on a SQLite file costs,
and how soon it starts a job that another process enqueues.

A real worker process (``python -m tinyq_core -u sqlite:///... -w 8``, the CLI's defaults)
on an empty file:

* idle CPU: the worker's user + system time (all its threads, ``/proc/<pid>/stat``) over
  ``--idle`` seconds with nothing enqueued, in % of one core;
* latency: this process enqueues one job (``task.delay``) at a time, 10-30 ms apart, and the
  job returns the ``time.time()`` at which it started; p50/p99 of (started - just before
  ``delay``). One machine, one clock.

The worker imports the same ``tinyq_core``/``tinyq_sqlite`` as this process (PYTHONPATH), so
two source trees can be compared by pointing PYTHONPATH at each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = '''
import os, time
import tinyq_sqlite.plugin
from tinyq_core import Application

app = Application(os.environ["TINYQ_URL"], plugins=[tinyq_sqlite.plugin])

@app.task(name="stamp")
def stamp():
    return time.time()
'''


def _cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and its children processes (a ``-p`` supervisor's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement")
    parser.add_argument("--jobs", type=int, default=300, help="sequential latency jobs")
    parser.add_argument("--uri-options", default="",
                        help="added to the URI, e.g. poll_interval=0.01")
    args = parser.parse_args()
    import tinyq_core
    import tinyq_sqlite

    paths = [str(Path(m.__file__ or "").resolve().parents[1]) for m in (tinyq_core, tinyq_sqlite)]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/q.db" + (f"?{args.uri_options}" if args.uri_options else "")
        Path(folder, "bench_app.py").write_text(APP)
        env = {**os.environ, "TINYQ_URL": url,
               "PYTHONPATH": os.pathsep.join([folder, *paths, os.environ.get("PYTHONPATH", "")])}
        os.environ["TINYQ_URL"] = url
        sys.path.insert(0, folder)
        from bench_app import app, stamp  # type: ignore[import-not-found]

        log = open(Path(folder, "worker.log"), "w")
        worker = subprocess.Popen([sys.executable, "-m", "tinyq_core", "-a", "bench_app.app"],
                                  cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(5):  # warm-up: the worker is up and has run jobs
                stamp.delay().result(timeout=30)
            time.sleep(1.0)
            before, t0 = _cpu_seconds(worker.pid), time.monotonic()
            time.sleep(args.idle)
            cpu = (_cpu_seconds(worker.pid) - before) / (time.monotonic() - t0)
            latencies = []
            for _ in range(args.jobs):
                time.sleep(random.uniform(0.01, 0.03))
                sent = time.time()
                started = stamp.delay().result(timeout=30)
                latencies.append((started - sent) * 1000)
        except Exception:
            print(Path(folder, "worker.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            worker.terminate()
            worker.wait(30)
            log.close()
            app.close()
    latencies.sort()
    print(f"idle worker CPU over {args.idle:.0f} s: {cpu * 100:.2f} % of a core; latency over "
          f"{args.jobs} jobs: p50 {statistics.median(latencies):.2f} ms, "
          f"p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f} ms, "
          f"max {latencies[-1]:.2f} ms")


if __name__ == "__main__":
    main()
