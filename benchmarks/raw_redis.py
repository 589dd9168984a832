"""Plain redis-py doing the Redis work of a queue, as the practical limit for a Python client:
XADD and LPUSH one by one and pipelined (100 per pipeline), and a drain loop that reads with
XREADGROUP COUNT 100 and sends the XACK + XDEL of each batch in the pipeline of the next read.

The drain runs the same task body as the queues (`_common.record`, one round trip per job, in
one thread) on each entry; the bare loop without it is printed for reference."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from . import _common as c

DB = 8
STREAM, GROUP, LIST = "raw:stream", "raw", "raw:list"
BATCH = 100


def body(i: int) -> bytes:
    return b'{"task":"add","args":[%d,%d]}' % (i, i)


def add(m: int, n: int) -> int:
    c.record(DB)
    return m + n


class Raw:
    name = "raw redis-py"

    def __init__(self, logdir: Path) -> None:
        self.redis = redis.Redis.from_url(c.url(DB))

    def close(self) -> None:
        self.redis.close()

    def timed(self, fn, n: int) -> float:  # type: ignore[no-untyped-def]
        self.redis.flushdb()
        t0 = time.perf_counter()
        fn(n)
        return n / (time.perf_counter() - t0)

    def xadd_one(self, n: int) -> None:
        r = self.redis
        for i in range(n):
            r.xadd(STREAM, {"body": body(i)})

    def xadd_pipelined(self, n: int) -> None:
        for start in range(0, n, BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for i in range(start, min(n, start + BATCH)):
                pipe.xadd(STREAM, {"body": body(i)})
            pipe.execute()

    def lpush_one(self, n: int) -> None:
        r = self.redis
        for i in range(n):
            r.lpush(LIST, body(i))

    def lpush_pipelined(self, n: int) -> None:
        for start in range(0, n, BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for i in range(start, min(n, start + BATCH)):
                pipe.lpush(LIST, body(i))
            pipe.execute()

    def drain(self, n: int, run_task: bool) -> float:
        """jobs/s of the XREADGROUP + XACK/XDEL loop over `n` enqueued entries."""
        self.redis.flushdb()
        self.xadd_pipelined(n)
        self.redis.xgroup_create(STREAM, GROUP, id="0")
        r = self.redis
        done, acks = 0, []
        t0 = time.perf_counter()
        while True:
            pipe = r.pipeline(transaction=False)
            if acks:
                pipe.xack(STREAM, GROUP, *acks)
                pipe.xdel(STREAM, *acks)
            if done >= n:
                pipe.execute()
                break
            pipe.xreadgroup(GROUP, "c1", {STREAM: ">"}, count=BATCH, block=1000)
            reply = pipe.execute()[-1]
            acks = []
            for entry_id, fields in reply[0][1] if reply else ():
                if run_task:
                    args = json.loads(fields[b"body"])["args"]
                    add(*args)
                acks.append(entry_id)
            done += len(acks)
        elapsed = time.perf_counter() - t0
        if run_task and c.counter_of(r) != n:
            raise c.BenchError(f"raw drain: {n} entries, {c.counter_of(r)} executions")
        if r.xlen(STREAM) != 0:
            raise c.BenchError(f"raw drain: {r.xlen(STREAM)} entries left")
        return n / elapsed

    def run(self, n: int) -> dict[str, float]:
        return {
            "xadd_one": self.timed(self.xadd_one, n),
            "xadd_pipe": self.timed(self.xadd_pipelined, n),
            "lpush_one": self.timed(self.lpush_one, n),
            "lpush_pipe": self.timed(self.lpush_pipelined, n),
            "drain": self.drain(n, run_task=True),
            "drain_bare": self.drain(n, run_task=False),
        }
