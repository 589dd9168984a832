"""What every system shares: the task's body, the counter, worker processes, and the drain,
latency and memory measurements.

The task of every system is ``add(m, n)``: it records its execution with one Redis round trip,
a pipeline of ``INCR bench:count``, ``SET bench:first <time> NX`` and ``SET bench:last <time>``
on the system's own database. The counter checks that every job ran exactly once; the first
and last times give the drain rate from the first to the last execution, and ``bench:last``
gives the execution time of a latency job.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

ENV = "TINYQ_BENCH_REDIS"  # redis://127.0.0.1:<port> of the throwaway server, set by __main__
COUNT, FIRST, LAST = "bench:count", "bench:first", "bench:last"
ROOT = Path(__file__).resolve().parent.parent
SETTLE = 0.5  # seconds the counter must stay still after a drain
STALL = 20.0  # seconds without progress before a drain is given up as lost
START_TIMEOUT = 60.0  # seconds for the first execution of a drain

T = TypeVar("T")


class BenchError(Exception):
    """A scenario of one system failed (a worker died, jobs were lost...)."""


def url(db: int) -> str:
    base = os.environ.get(ENV)
    if not base:
        raise RuntimeError(f"{ENV} is not set: run the benchmarks with `python -m benchmarks`")
    return f"{base}/{db}"


# -- the task's body, identical for every system ---------------------------------------------

_clients: dict[int, redis.Redis] = {}
_async_clients: dict[tuple[int, int], aioredis.Redis] = {}


def record(db: int) -> None:
    """One round trip: count the execution, keep the first and last execution times."""
    client = _clients.get(db)
    if client is None:
        client = _clients[db] = redis.Redis.from_url(url(db))
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.incr(COUNT)
    pipe.set(FIRST, now, nx=True)
    pipe.set(LAST, now)
    pipe.execute()


async def arecord(db: int) -> None:
    """`record` for async tasks (arq, taskiq), on a client of the running event loop."""
    key = (db, id(asyncio.get_running_loop()))
    client = _async_clients.get(key)
    if client is None:
        client = _async_clients[key] = aioredis.Redis.from_url(url(db))
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.incr(COUNT)
    pipe.set(FIRST, now, nx=True)
    pipe.set(LAST, now)
    await pipe.execute()


def counter_of(client: redis.Redis) -> int:
    return int(client.get(COUNT) or 0)


# -- worker processes --------------------------------------------------------------------------


def script(name: str) -> str:
    """A console script of this Python's environment (tinyq, rq, celery, ...)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    import shutil

    found = shutil.which(name)
    if found is None:
        raise BenchError(f"the {name!r} command is not installed")
    return found


def rss_kb(pid: int) -> int:
    """VmRSS of one process, in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_pids(pgid: int) -> list[int]:
    """The processes of one process group: a worker and the children it forked."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp
                pids.append(int(entry))
    return pids


class Workers:
    """Worker commands started as subprocesses, each in its own process group and with its
    output in a log file (an unread pipe would block it)."""

    def __init__(self, commands: list[list[str]], logdir: Path, tag: str) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
        )
        try:
            for i, command in enumerate(commands):
                log = logdir / f"{tag}-{i}.log"
                self.logs.append(log)
                with open(log, "wb") as out:
                    out.write((" ".join(command) + "\n").encode())
                    out.flush()
                    self.procs.append(subprocess.Popen(
                        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                        stderr=subprocess.STDOUT, start_new_session=True,
                    ))
        except BaseException:
            self.stop()
            raise

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def rss_kb(self) -> int:
        """VmRSS of every process of the workers' process groups, added up."""
        return sum(rss_kb(pid) for p in self.procs for pid in group_pids(p.pid))

    def tail(self, chars: int = 1500) -> str:
        text = ""
        for log in self.logs:
            try:
                text += f"--- {log}\n" + log.read_text(errors="replace")[-chars:]
            except OSError:
                pass
        return text

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM each process group, then SIGKILL what is left after `timeout`."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            try:  # the group too: children of a supervisor that exited
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.poll() is None:
                p.wait(10)


# -- results ---------------------------------------------------------------------------------


@dataclass
class Drain:
    jobs: int  # enqueued
    executions: int  # counted once the counter settled
    rate: float  # jobs/s from the first to the last execution
    rate_with_start: float  # jobs/s from spawning the worker to the last execution

    @property
    def verdict(self) -> str:
        if self.executions == self.jobs:
            return "ok"
        if self.executions > self.jobs:
            return f"{self.executions - self.jobs} ran twice"
        return f"{self.jobs - self.executions} lost"


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


# -- the interface of a system -----------------------------------------------------------------


class System:
    """One job queue. Subclasses set `name`, `db`, `bulk_api` and implement the enqueues and
    the worker commands; the measurements are shared."""

    name = "?"
    db = 0
    bulk_api: str | None = None  # what enqueue_bulk uses, None if the system has no bulk API
    worker_note = ""  # how the worker is tuned, for the report

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.redis = redis.Redis.from_url(url(self.db))

    # per system
    def enqueue_one(self, n: int) -> None:
        """Enqueue add(i, i) for i in range(n), one call per job."""
        raise NotImplementedError

    def enqueue_bulk(self, n: int) -> None:
        """Enqueue add(i, i) for i in range(n) with the system's bulk API."""
        raise NotImplementedError

    def enqueue_timed(self, i: int) -> float:
        """Enqueue one add(i, i); return time.time() taken right before the enqueue call."""
        raise NotImplementedError

    def worker_commands(self, processes: int) -> list[list[str]]:
        raise NotImplementedError

    def reset(self) -> None:
        """Empty the system's database before a scenario (no worker is running)."""
        self.redis.flushdb()

    def close(self) -> None:
        self.redis.close()

    # shared
    def counter(self) -> int:
        return counter_of(self.redis)

    def start_worker(self, processes: int, tag: str) -> Workers:
        return Workers(self.worker_commands(processes), self.logdir, f"{self.name}-{tag}")

    def wait_drained(self, n: int, workers: Workers, t_spawn: float) -> Drain:
        """Wait until `n` more executions are counted (from 0) and the counter stays still."""
        last_count, last_change = 0, time.monotonic()
        while True:
            count = self.counter()
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if count >= n:
                break
            if not workers.alive():
                raise BenchError(f"{self.name}: a worker exited during the drain\n{workers.tail()}")
            if count == 0 and now - last_change > START_TIMEOUT:
                raise BenchError(f"{self.name}: no job ran within {START_TIMEOUT:.0f} s\n"
                                 f"{workers.tail()}")
            if count and now - last_change > STALL:
                break  # lost jobs: reported by the verdict
            time.sleep(0.01)
        settled_at = time.monotonic() + SETTLE
        while time.monotonic() < settled_at:
            time.sleep(0.05)
            now_count = self.counter()
            if now_count != count:
                count, settled_at = now_count, time.monotonic() + SETTLE
        first = float(self.redis.get(FIRST) or 0)
        last = float(self.redis.get(LAST) or 0)
        span = max(last - first, 1e-9)
        return Drain(n, count, count / span, count / max(last - t_spawn, 1e-9))

    def drain(self, n: int, processes: int, tag: str, latency_jobs: int = 0
              ) -> tuple[Drain, list[float] | None]:
        """Start a worker on `n` enqueued jobs and time the drain; then, when asked, measure
        the latency of `latency_jobs` sequential jobs on the same, now idle, worker."""
        t_spawn = time.time()
        workers = self.start_worker(processes, tag)
        try:
            result = self.wait_drained(n, workers, t_spawn)
            latencies = self.latency(latency_jobs, workers) if latency_jobs else None
        finally:
            workers.stop()
        return result, latencies

    def latency(self, jobs: int, workers: Workers, warmup: int = 5) -> list[float]:
        """Enqueue one job, wait for its execution (a keyspace notification of the SET of
        bench:last), take the execution time the task recorded; `jobs` times in a row."""
        channel = f"__keyspace@{self.db}__:{LAST}"
        pubsub = self.redis.pubsub()
        self.redis.config_set("notify-keyspace-events", "K$")
        try:
            pubsub.subscribe(channel)
            if pubsub.get_message(timeout=5) is None:  # the subscription's confirmation
                raise BenchError(f"{self.name}: no keyspace subscription")
            base = self.counter()
            latencies = []
            for i in range(warmup + jobs):
                t0 = self.enqueue_timed(i)
                deadline = time.monotonic() + 30
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        break
                    if time.monotonic() > deadline or not workers.alive():
                        raise BenchError(f"{self.name}: latency job {i} did not run\n"
                                         f"{workers.tail()}")
                executed = float(self.redis.get(LAST) or 0)
                if i >= warmup:
                    latencies.append(executed - t0)
            time.sleep(SETTLE)
            ran = self.counter() - base
            if ran != warmup + jobs:
                raise BenchError(f"{self.name}: {warmup + jobs} latency jobs ran {ran} times")
            return latencies
        finally:
            self.redis.config_set("notify-keyspace-events", "")
            pubsub.close()

    def memory(self, jobs: int, chunk: int = 10_000, backlog: int = 50_000
               ) -> tuple[int, int, int]:
        """RSS (kB) of a 1-process worker: after a warm-up of 1,000 jobs, and after `jobs`
        more, fed in chunks so that at most `backlog` wait in Redis. Returns (before, after,
        peak-sampled)."""
        self.reset()
        enqueue = self.enqueue_bulk if self.bulk_api else self.enqueue_one
        workers = self.start_worker(1, "rss")
        try:
            enqueue(1000)
            self.wait_drained(1000, workers, time.time())
            time.sleep(1.0)
            before = workers.rss_kb()
            peak, done, target = before, 0, 1000 + jobs
            last_sample = time.monotonic()
            while done < jobs:
                if done - (self.counter() - 1000) < backlog:
                    size = min(chunk, jobs - done)
                    enqueue(size)
                    done += size
                else:
                    time.sleep(0.05)
                if not workers.alive():
                    raise BenchError(f"{self.name}: the worker exited\n{workers.tail()}")
                if time.monotonic() - last_sample > 1.0:
                    peak, last_sample = max(peak, workers.rss_kb()), time.monotonic()
            deadline_change = time.monotonic()
            last = self.counter()
            while last < target:
                time.sleep(0.2)
                peak = max(peak, workers.rss_kb())
                count = self.counter()
                if count != last:
                    last, deadline_change = count, time.monotonic()
                elif time.monotonic() - deadline_change > STALL:
                    raise BenchError(f"{self.name}: {target - last} of the RSS jobs never ran")
            time.sleep(1.0)
            after = workers.rss_kb()
            if self.counter() != target:
                raise BenchError(f"{self.name}: {target} RSS jobs ran {self.counter()} times")
            return before, after, max(peak, after)
        finally:
            workers.stop()


class AsyncSystem(System):
    """A system whose producer API is async (arq, taskiq): one event loop for all calls."""

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()
        super().close()


def median_spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)
