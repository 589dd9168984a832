"""`python -m benchmarks.durable`: the cost of tinyq's durable enqueue (`WAIT 1` after the
writes), on a throwaway primary and one replica, each scenario with durable off and on:

1. N `add.delay(i, i)` one by one: jobs/s and mean µs per enqueue;
2. `add.map()` of 1,000 jobs, 20 times: jobs/s;
3. durable on, the replica stopped, durable_timeout=0.2: how long a `delay()` takes to raise
   BrokerError.

Each scenario runs `RUNS` times (off and on interleaved), reported as median (min-max). Every
run enqueues under a fresh key prefix; no worker runs.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
import uuid

import redis

from tinyq_core import Application, BrokerError, Task

from . import _common as c
from ._redis_server import RedisServer

N = 5_000  # jobs of scenario 1
MAP_SIZE, MAP_CALLS = 1_000, 20  # scenario 2
RUNS = 3
DASH = "\u2013"


def make_app(port: int, durable: bool, timeout: float = 1.0
             ) -> tuple[Application, Task[[int, int], None]]:
    """A fresh application under its own prefix, with the no-op task `add`."""
    prefix = f"bench-durable-{uuid.uuid4().hex[:8]}"
    app = Application(f"redis://127.0.0.1:{port}/0?prefix={prefix}&durable_timeout={timeout:g}",
                      durable_enqueue=durable)

    @app.task()
    def add(m: int, n: int) -> None:
        pass

    add.delay(0, 0)  # warm-up: connect and load the script before any timing
    return app, add


def one_by_one(add: Task[[int, int], None]) -> float:
    t0 = time.perf_counter()
    for i in range(N):
        add.delay(i, i)
    return N / (time.perf_counter() - t0)


def mapped(add: Task[[int, int], None]) -> float:
    items = [(i, i) for i in range(MAP_SIZE)]
    t0 = time.perf_counter()
    for _ in range(MAP_CALLS):
        add.map(items)
    return MAP_SIZE * MAP_CALLS / (time.perf_counter() - t0)


def refused(add: Task[[int, int], None]) -> float:
    """Seconds until a durable delay() raises BrokerError (no replica confirms it)."""
    t0 = time.perf_counter()
    try:
        add.delay(1, 1)
    except BrokerError:
        return time.perf_counter() - t0
    raise SystemExit("a durable delay() returned although the replica is stopped")


def wait_link_up(replica: RedisServer, timeout: float = 10.0) -> None:
    client = redis.Redis(port=replica.port)
    deadline = time.monotonic() + timeout
    try:
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise SystemExit(f"the replica on port {replica.port} did not sync in {timeout} s")
            time.sleep(0.05)
    finally:
        client.close()


def cell(values: list[float], digits: int = 0) -> str:
    med, lo, hi = c.median_spread(values)
    return f"{med:,.{digits}f} ({lo:,.{digits}f}{DASH}{hi:,.{digits}f})"


def table(rates: dict[tuple[str, bool], list[float]], refusals: list[float]) -> str:
    rows = [
        "| scenario | durable off | durable on | on vs off |",
        "|---|---:|---:|---:|",
    ]
    for kind, label in (("one", f"`delay()` one by one, {N:,} jobs"),
                        ("map", f"`map()` of {MAP_SIZE:,} jobs, {MAP_CALLS} calls")):
        off, on = rates[kind, False], rates[kind, True]
        us_off, us_on = ([1e6 / r for r in v] for v in (off, on))
        extra = c.median_spread(us_on)[0] - c.median_spread(us_off)[0]
        ratio = c.median_spread(on)[0] / c.median_spread(off)[0]
        rows.append(f"| {label}: jobs/s | {cell(off)} | {cell(on)} | {ratio:.2f}x |")
        rows.append(f"| {label}: µs per job | {cell(us_off, 1)} | {cell(us_on, 1)} "
                    f"| {extra:+,.1f} µs |")
    rows.append("| replica stopped, `durable_timeout=0.2`: `delay()` raises BrokerError "
                f"after (s) | — | {cell(refusals, 3)} | |")
    return "\n".join(rows)


def main() -> None:
    primary = RedisServer().start()
    replica: RedisServer | None = None
    try:
        replica = RedisServer(("--replicaof", "127.0.0.1", str(primary.port))).start()
        wait_link_up(replica)
        print(f"redis-server {primary.version()}, redis-py {importlib.metadata.version('redis')}"
              f", {os.cpu_count()} CPUs; primary :{primary.port}, replica :{replica.port}")
        rates: dict[tuple[str, bool], list[float]] = {}
        for run in range(1, RUNS + 1):
            for durable in (False, True):
                app, add = make_app(primary.port, durable)
                try:
                    one, bulk = one_by_one(add), mapped(add)
                finally:
                    app.close()
                rates.setdefault(("one", durable), []).append(one)
                rates.setdefault(("map", durable), []).append(bulk)
                print(f"run {run} durable={'on ' if durable else 'off'}: delay {one:7,.0f}/s, "
                      f"map {bulk:8,.0f}/s", flush=True)
        app, add = make_app(primary.port, True, timeout=0.2)  # warmed up while the replica is up
        try:
            replica.close()  # scenario 3: no replica left to confirm
            refusals = [refused(add) for _ in range(RUNS)]
        finally:
            app.close()
        print("replica stopped: BrokerError after " + ", ".join(f"{t:.3f}" for t in refusals)
              + " s\n")
        print(table(rates, refusals))
    finally:
        if replica is not None:
            replica.close()
        primary.close()


if __name__ == "__main__":
    main()
