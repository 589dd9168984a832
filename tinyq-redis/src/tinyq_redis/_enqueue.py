"""Enqueueing on the Redis broker: one script call per chunk of jobs per queue, all in one
pipeline, and the optional wait for a replica. A mixin of :class:`~tinyq_redis.RedisBroker`:
it works on the broker's client and key layout (see _broker.py for both)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import OutOfMemoryError

from tinyq_core.plugin import BrokerError, EnqueueError, Message

from ._connection import Options, out_of_memory, translate_errors
from ._keys import GROUP, Keys, queues_key
from ._scripts import ENQUEUE, SCHEDULE, execute

ENQUEUE_CHUNK = 1000  # jobs per enqueue script call


class RedisEnqueue:
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        options: Options
        _first_of: Any
        _keys: dict[str, Keys]
        _server_checked: bool
        prefix: str
        _known_queues: set[str]  # queues this process recorded in the queues set

        def keys(self, queue: str) -> Keys: ...

        def _pipeline(self) -> Any: ...

        def check_server(self) -> None: ...

    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        if not messages:
            return
        if not self._server_checked:  # a producer's first use
            self.check_server()
        self._record_queues(messages)
        if len(messages) == 1 and not durable and messages[0].due is None:
            # delay(): one script call, without the cost of building a pipeline.
            m = messages[0]
            keys = self._keys.get(m.queue) or self.keys(m.queue)
            with translate_errors(self.where):
                try:
                    ENQUEUE(self.client, keys.enqueue, (m.id, m.body))
                except OutOfMemoryError as exc:
                    # Refused before its first write: not in.
                    raise EnqueueError(out_of_memory(self.where)) from exc
            return
        pipe = self._pipeline()
        chunks = self.queue_enqueue(pipe, messages)
        waits = self._add_wait(pipe, {m.queue for m in messages}) if durable else 0
        with translate_errors(self.where):
            replies = execute(self.client, pipe, raise_on_error=False)
        self._check_chunks(chunks, replies)
        if waits and min(int(n) for n in replies[-waits:]) < 1:
            raise BrokerError(
                f"durable enqueue: no replica of Redis at {self.where} confirmed the "
                f"{len(messages)} job(s) within {self.options.durable_timeout:g} s "
                "(durable_timeout). They are on the primary and run if it stays up; enqueue "
                "them again under the same job_id to be sure (a queued job is not added twice)"
            )

    def queue_enqueue(self, pipe: Any, messages: Sequence[Message]) -> list[list[str]]:
        """Add the script calls enqueueing ``messages`` to ``pipe`` (a sync or an asyncio
        pipeline); return the job ids of each call, in order."""
        now = time.time()
        ready: dict[str, list[Any]] = {}
        delayed: dict[str, list[Any]] = {}
        for m in messages:
            if m.due is not None and m.due > now:
                # Relative delays: the server's clock decides when it is due, not ours.
                delay_ms = int((m.due - now) * 1000) or 1
                delayed.setdefault(m.queue, []).extend((m.id, delay_ms, m.body))
            else:
                ready.setdefault(m.queue, []).extend((m.id, m.body))
        # Script calls of at most ENQUEUE_CHUNK jobs: each runs in milliseconds, so no reply
        # waits near the socket timeout and other clients are never held up for long. A
        # producer killed mid-way leaves whole chunks, in order. Each call is all or
        # nothing when refused (Redis 7 checks maxmemory at a script's first write only).
        chunks: list[list[str]] = []  # the job ids of each call, in order
        for queue, args in ready.items():
            keys = self.keys(queue)
            for start in range(0, len(args), 2 * ENQUEUE_CHUNK):
                chunk = args[start : start + 2 * ENQUEUE_CHUNK]
                chunks.append(chunk[0::2])
                ENQUEUE.queue(pipe, keys.enqueue, chunk)
        for queue, args in delayed.items():
            keys = self.keys(queue)
            for start in range(0, len(args), 3 * ENQUEUE_CHUNK):
                chunk = args[start : start + 3 * ENQUEUE_CHUNK]
                chunks.append(chunk[0::3])
                SCHEDULE.queue(pipe, keys.schedule, [GROUP, "", *chunk])
        return chunks

    def _record_queues(self, messages: Sequence[Message]) -> None:
        """Add the queues to the known-queues set, once per queue and process: a round trip
        the first time, none in the steady state. Before the jobs, so a queue that has jobs
        is known (a producer dying in between leaves a known queue, empty: harmless)."""
        new = {m.queue for m in messages} - self._known_queues
        if new:
            for queue in new:
                self.keys(queue)  # refuses a name that cannot be a key, before it is stored
            with translate_errors(self.where):
                try:
                    self.client.sadd(queues_key(self.prefix), *sorted(new))
                except OutOfMemoryError as exc:  # refused, and no job of the call went in
                    raise EnqueueError(out_of_memory(self.where)) from exc
            self._known_queues |= new

    def _check_chunks(self, chunks: list[list[str]], replies: list[Any]) -> None:
        """Raise the first error among ``replies``: EnqueueError naming the ids of the calls
        that went in when the only errors are calls refused for memory (refused before their
        first write: nothing of them went in), else the error as any other."""
        errors = [r for r in replies if isinstance(r, Exception)]
        if not errors:
            return
        if all(isinstance(e, OutOfMemoryError) for e in errors):
            went_in = [job_id for ids, reply in zip(chunks, replies, strict=False)
                       if not isinstance(reply, Exception) for job_id in ids]
            raise EnqueueError(out_of_memory(self.where), enqueued_ids=went_in) from errors[0]
        with translate_errors(self.where):
            raise errors[0]

    def _add_wait(self, pipe: Any, queues: Iterable[str]) -> int:
        """Queue WAIT 1 after the writes, on each node written to: the reply counts the
        replicas that have them. Returns how many WAITs were queued."""
        timeout_ms = max(1, int(self.options.durable_timeout * 1000))
        if self._first_of is None:
            pipe.execute_command("WAIT", 1, timeout_ms)
            return 1
        nodes = {}
        for queue in queues:
            node = self.client.get_node_from_key(self.keys(queue).stream)
            nodes[node.name] = node
        for node in nodes.values():
            # In a Cluster pipeline each node's commands share one connection, as WAIT needs.
            pipe.execute_command("WAIT", 1, timeout_ms, target_nodes=node)
        return len(nodes)

    # -- consumer ----------------------------------------------------------------------------
