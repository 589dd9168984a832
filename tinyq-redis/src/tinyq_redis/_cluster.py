"""Waiting on keys that live in different Redis Cluster slots.

Redis refuses a blocking read over keys of several slots (CROSSSLOT), even on one node. So a
worker that consumes several queues, or a mover that watches several wake keys, sends one
blocking command per key, each on its own connection to the key's node, and takes whichever
answers first. The others are then ended at once with ``CLIENT UNBLOCK`` (as if they had timed
out) and their replies collected too: a read that won the race against the unblock still
returns its entries, so nothing it leased goes astray.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from redis.cluster import RedisCluster


class _Call:
    """One blocking command on a connection of its own, with that connection's client id."""

    def __init__(self, client: RedisCluster, key: str, command: Sequence[Any]) -> None:
        self.node = client.get_node_from_key(key)
        self.pool = client.get_redis_connection(self.node).connection_pool
        self.command = command
        self.client_id: int | None = None
        self.known = threading.Event()

    def run(self) -> Any:
        connection = self.pool.get_connection()
        try:
            # One write: CLIENT ID's reply arrives once the server has also taken the blocking
            # command, so an unblock sent after reading it cannot come too early.
            connection.send_packed_command(
                connection.pack_commands([("CLIENT", "ID"), tuple(self.command)])
            )
            self.client_id = int(connection.read_response())
            self.known.set()
            return connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self.known.set()
            self.pool.release(connection)


class FirstOf:
    """Runs blocking commands on several slots at once; see the module docstring."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._threads: ThreadPoolExecutor | None = None
        self._size = 0
        self._lock = threading.Lock()

    def __call__(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Replies in the order of ``calls`` (``(key, command)`` pairs); ``None`` for a
        command cut short. Raises the first error any of them met."""
        with self._lock:  # one wait at a time: each uses a connection per key
            if self._threads is None or self._size < len(calls):
                if self._threads is not None:
                    self._threads.shutdown()
                self._size = len(calls)
                self._threads = ThreadPoolExecutor(self._size, "tinyq-cluster-wait")
            jobs = [_Call(self.client, key, command) for key, command in calls]
            futures: list[Future[Any]] = [self._threads.submit(job.run) for job in jobs]
            wait(futures, return_when=FIRST_COMPLETED)
            for job, future in zip(jobs, futures, strict=True):
                if not future.done():
                    job.known.wait()
                    if job.client_id is not None:
                        self.client.execute_command(
                            "CLIENT UNBLOCK", job.client_id, target_nodes=job.node
                        )
            return [future.result() for future in futures]

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)
