"""The async scenarios of `python -m benchmarks --async` (issue 19), run after the sync ones on
the same throwaway Redis: `async_drain` (tinyq, arq, taskiq, SAQ draining N I/O-bound async
jobs in one worker process, at each system's default concurrency and all at the same) and
`async_enqueue` (one-by-one awaited enqueue from a running loop). The peers run from their
own venvs (`python -m benchmarks.peer_envs`); one whose venv is absent is skipped with a line
saying how to create it.
"""

from __future__ import annotations

from . import async_drain, async_enqueue, peer_envs
from ._redis_server import RedisServer


def run(server: RedisServer, n: int, runs: int, concurrency: int) -> list[str]:
    """Both scenarios; prints progress and tables, returns the Markdown lines."""
    peers = peer_envs.describe(list(peer_envs.PEERS))
    print(f"\nAsync scenarios: {n:,} jobs, {runs} run(s); {peers}", flush=True)
    drain = async_drain.run(server, n, runs, concurrency,
                            async_drain.available(list(async_drain.DRAINERS)))
    enqueue = async_enqueue.run(server, n, runs)
    md = [f"**Async drain**: {n:,} jobs of `asyncio.sleep(0.05)` + PING + RPUSH, one worker "
          f"process, jobs/s\n", *drain, "",
          "**Async enqueue**: one by one, each awaited, from a running loop\n", *enqueue, ""]
    print("\n" + "\n".join(md))
    return md
