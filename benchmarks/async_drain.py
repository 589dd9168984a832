"""`python -m benchmarks.async_drain`: an I/O-bound async workload drained by one worker
process: N jobs, each `await asyncio.sleep(0.05)` plus one async Redis call (a PING from a
redis.asyncio client made once per event loop), on a throwaway Redis; tinyq, and arq, taskiq
and SAQ from their own venvs (`python -m benchmarks.peer_envs`; a peer without one is skipped).

Each system's app (benchmarks/_async_apps.py) is written to a temporary folder; its jobs are
enqueued by a subprocess of its interpreter, then one worker process runs them: in burst mode
(exits when drained) where the system has one, else (taskiq) it is stopped once the N spans are
in. Every job records "i start end"; each drain must show every i exactly once.

Two settings, interleaved within every run: each system at its own default concurrency (arq
max_jobs 10, SAQ 10, taskiq max_async_tasks 100, tinyq --async-concurrency 100), and every system
at --concurrency. Reported: jobs/s from the first job's start to the last job's end, and from
spawning the worker to its exit (burst systems only), median and spread over --runs runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from . import _async_apps as apps
from . import _common as c
from . import peer_envs
from ._redis_server import RedisServer

DASH = "\u2013"


@dataclass(frozen=True)
class Drainer:
    app: str  # the bench_app.py source
    default_concurrency: int  # the system's own default: jobs at a time in one worker
    worker: Callable[[Path, int], list[str]]  # (its python, concurrency) -> the worker command
    venv: str | None = None  # the peer venv (peer_envs) it runs from; None: this interpreter
    burst: bool = True  # the worker exits once drained; else it is stopped after N spans

    def python(self) -> Path:
        return Path(sys.executable) if self.venv is None else peer_envs.python(self.venv)


def _script(python: Path, name: str) -> str:
    return str(python.parent / name)  # the console script installed beside that python


DRAINERS: dict[str, Drainer] = {
    "tinyq": Drainer(apps.TINYQ, 100, lambda py, k: [
        str(py), "-m", "tinyq_core", "-a", "bench_app.app", "-w", "1",
        "--async-concurrency", str(k), "--burst"]),
    "arq": Drainer(apps.ARQ, 10, lambda py, k: [
        _script(py, "arq"), "bench_app.WorkerSettings", "--burst"], venv="arq"),
    "taskiq": Drainer(apps.TASKIQ, 100, lambda py, k: [
        _script(py, "taskiq"), "worker", "bench_app:broker", "--workers", "1",
        "--max-async-tasks", str(k), "--log-level", "WARNING"], venv="taskiq", burst=False),
    "saq": Drainer(apps.SAQ, 10, lambda py, k: [
        _script(py, "saq"), "bench_app.settings", "--workers", "1"], venv="saq"),
}


def environment(drainer: Drainer, folder: Path, url: str, concurrency: int) -> dict[str, str]:
    # a peer sees only its app folder: tinyq's worktree stays off its path
    path = [str(folder)] + ([os.environ["PYTHONPATH"]] if drainer.venv is None
                            and os.environ.get("PYTHONPATH") else [])
    return {**os.environ, "BENCH_URL": url, "BENCH_REDIS": url,
            "BENCH_CONCURRENCY": str(concurrency), "PYTHONPATH": os.pathsep.join(path)}


def run_worker(drainer: Drainer, command: list[str], folder: Path, env: dict[str, str],
               r: redis.Redis, n: int) -> None:
    worker = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              start_new_session=True)  # its own group: stop its children too
    try:
        if drainer.burst:
            worker.wait(timeout=600)
            if worker.returncode != 0:
                raise c.BenchError(f"{command[0]} exited with {worker.returncode}")
            return
        deadline = time.monotonic() + 600
        while r.llen("bench:spans") < n:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise c.BenchError(f"{command[0]}: {r.llen('bench:spans')} of {n} jobs ran")
            time.sleep(0.02)
        time.sleep(0.5)  # a job run twice would show up by now
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def check_spans(system: str, raw: list[bytes], n: int) -> tuple[float, float, int]:
    """Every job ran (else BenchError); returns (first start, last end, runs beyond one):
    a job run twice is reported beside the rate, as the peer's delivery guarantee allows."""
    spans = [s.split() for s in raw]
    ran = {int(s[0]) for s in spans}
    if ran != set(range(n)):
        raise c.BenchError(f"{system}: {n - len(ran & set(range(n)))} of {n} jobs never ran")
    return min(float(s[1]) for s in spans), max(float(s[2]) for s in spans), len(spans) - n


Rate = tuple[float, float | None, int]


def drain_once(system: str, server: RedisServer, n: int, concurrency: int) -> Rate:
    """(jobs/s first start to last end, jobs/s from spawn or None when stopped by us, runs
    beyond one per job)."""
    drainer = DRAINERS[system]
    url = f"{server.url}/1"
    r = redis.Redis.from_url(url)
    r.flushdb()
    python = drainer.python()
    with tempfile.TemporaryDirectory(prefix="tinyq-async-bench-") as tmp:
        folder = Path(tmp)
        (folder / "bench_app.py").write_text(drainer.app)
        env = environment(drainer, folder, url, concurrency)
        subprocess.run([str(python), "-c", f"import bench_app; bench_app.fill({n})"],
                       cwd=folder, env=env, check=True, timeout=600)
        began = time.time()
        run_worker(drainer, drainer.worker(python, concurrency), folder, env, r, n)
        ended = time.time()
    first, last, again = check_spans(system, r.lrange("bench:spans", 0, -1), n)
    r.close()
    return n / (last - first), (n / (ended - began) if drainer.burst else None), again


def available(systems: list[str]) -> list[str]:
    """Those whose interpreter exists; a line saying how to get each missing peer."""
    found = []
    for system in systems:
        venv = DRAINERS[system].venv
        if venv is None or peer_envs.available(venv):
            found.append(system)
        else:
            print(peer_envs.how_to_create(venv), flush=True)
    return found


def run(server: RedisServer, n: int, runs: int, concurrency: int, systems: list[str]
        ) -> list[str]:
    """Run both settings, interleaved; print progress, return the Markdown table's lines."""
    settings = {"own default": None, "same": concurrency}
    rates: dict[tuple[str, str], list[Rate]] = {}
    for number in range(1, runs + 1):
        for setting, same in settings.items():
            for system in systems:
                k = same or DRAINERS[system].default_concurrency
                rate = drain_once(system, server, n, k)
                rates.setdefault((setting, system), []).append(rate)
                spawn = f"{rate[1]:,.0f}" if rate[1] is not None else "-"
                print(f"run {number} {setting:11} {system:6} concurrency {k:3}: "
                      f"{rate[0]:,.0f} jobs/s first-to-last, {spawn} from spawn"
                      + (f", {rate[2]} job run(s) beyond one" if rate[2] else ""), flush=True)
    lines = ["| setting | system | concurrency | jobs/s first-to-last | jobs/s from spawn "
             "| tinyq / this | runs beyond one |", "|---|---|---:|---:|---:|---:|---:|"]
    for (setting, system), values in rates.items():
        k = settings[setting] or DRAINERS[system].default_concurrency
        med, lo, hi = c.median_spread([v[0] for v in values])
        spawns = [v[1] for v in values if v[1] is not None]
        spawn = "-"
        if spawns:
            s_med, s_lo, s_hi = c.median_spread(spawns)
            spawn = f"{s_med:,.0f} ({s_lo:,.0f}{DASH}{s_hi:,.0f})"
        ratio = "-"
        if system != "tinyq" and (setting, "tinyq") in rates:
            ratio = f"{c.median_spread([v[0] for v in rates[setting, 'tinyq']])[0] / med:.2f}x"
        lines.append(f"| {setting} | {system} | {k} | {med:,.0f} ({lo:,.0f}{DASH}{hi:,.0f}) "
                     f"| {spawn} | {ratio} | {sum(v[2] for v in values)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.async_drain",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="jobs (default: 2000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default: 3)")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="jobs at a time for every system in the 'same' setting "
                             "(default: 100)")
    parser.add_argument("--systems", default=",".join(DRAINERS),
                        help=f"comma-separated, of: {', '.join(DRAINERS)} (default: all)")
    args = parser.parse_args(argv)
    systems = available([s.strip() for s in args.systems.split(",") if s.strip()])
    server = RedisServer().start()
    try:
        print(f"redis-server {server.version()}; {peer_envs.describe(systems)}; "
              f"{os.cpu_count()} CPUs; {args.n:,} jobs per drain", flush=True)
        print("\n".join(["", *run(server, args.n, args.runs, args.concurrency, systems)]))
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
