"""The Redis broker: one Stream with one consumer group per queue.

Keys of queue ``q`` (prefix ``tinyq``) all share the hash tag ``{tinyq:q}``, so every script
touches one Cluster slot: ``:stream`` (the queue; an entry holds the job id ``id``, the body
``b`` and, after a recovery, ``a``: the deliveries before this entry, a hint only: the count
believed is in ``:recovered``, entry id -> count, written by recover.lua alone), ``:jobs``
(hash: job id -> the id of its stream entry while queued or leased, ``d`` delayed; what
``status()`` and the enqueue dedupe read, each checking that the entry or delayed job still
exists, so a stream deleted or trimmed by hand leaves no job id blocked; ``q``, the mark of
older versions, names no entry), ``:delayed`` (sorted set of job ids by due time in ms, by the
server's clock), ``:payloads`` (job id -> body of delayed jobs), ``:wake`` (a one-item list
that wakes a sleeping mover), ``:dead`` (the dead letters, a stream) and ``:result:<job id>``
(see _results.py).

Round trips, each one pipeline whatever the batch size:
* enqueue of any number of jobs: 1 (one script call per queue: XADD + HSET for each job; the
  schedule script for delayed jobs);
* the worker's report and next fetch: 1 (``settle_and_reserve``: per queue one settle script
  storing the results, then XACK + XDEL + HDEL of each entry still pending (a late ack of a
  recovered entry touches nothing; the HDEL only a mark naming that entry); then XREADGROUP
  ... COUNT n BLOCK t); several queues: the priority script in that pipeline, plus a
  blocking read when all are empty (on a Cluster, where queues live in different slots: one
  read per queue, in priority order, until the batch is full; when all are empty, one
  blocking read per queue at once, see _cluster.py);
* ack alone (a report while the fetcher blocks on an empty queue): 1; lease renewal of all
  held jobs: 1 (XCLAIM ... JUSTID);
* a retry (nack) and a dead letter: 1 script each;
* recovery and the mover: 1 script per queue, all pipelined (recovery: one more round per
  1,000 pending entries or 200 recovered); a lease expires after ``visibility_timeout``
  of idle time in the pending list.

Scripts whose work grows with a queue (purge, requeue of dead letters, recovery, the status
scan of an older mark) do at most a chunk per call and are called until done (see _admin.py):
no call holds Redis up for more than a few milliseconds, whatever the queue's size.

On a Cluster a pipeline may span queues (slots) and nodes: redis-py sends each node its part
on one connection, in order, so each queue's commands still run in the order given.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import redis
from redis.cluster import RedisCluster
from redis.exceptions import OutOfMemoryError

from tinyq_core.plugin import (
    Broker,
    BrokerError,
    Delivery,
    EnqueueError,
    Message,
    Result,
    SettleRequest,
)

from ._admin import RedisAdmin
from ._cluster import FirstOf
from ._connection import Options, connect, out_of_memory, translate_errors
from ._keys import GROUP, Keys, check_name, text
from ._memory import check_eviction
from ._results import RedisResultBackend
from ._scripts import (
    DEAD_LETTER,
    ENQUEUE,
    MOVE_DUE,
    RECOVER,
    RESERVE,
    SCHEDULE,
    SETTLE,
    execute,
)

ENQUEUE_CHUNK = 1000  # jobs per enqueue script call
RECOVER_BATCH = 200  # expired leases recovered per script call (each call: a few ms)
RECOVER_SCAN = 1000  # pending entries read per call, most often the whole pending list
MOVE_BATCH = 1000
TIMER_SLACK = 0.1  # seconds: how late Redis may end a BLPOP (its default hz is 10)


def _count(value: Any) -> int:
    """Earlier deliveries of an entry; 0 when absent or not a number (a hand-written entry)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


class RedisBroker(Broker, RedisAdmin):
    """At-least-once delivery on Redis Streams; see the module docstring for the layout."""

    def __init__(
        self,
        uri: str = "redis://",
        *,
        client: redis.Redis | RedisCluster | None = None,
        **options: Any,
    ) -> None:
        """``client`` replaces the connection the URI describes (a fakeredis client in
        tests); the URI's tinyq options still apply."""
        made, opts, self.where = connect(uri, **options)
        self.client: Any = client if client is not None else made
        self.options: Options = opts
        self.visibility_timeout = opts.visibility_timeout
        self.prefix = opts.prefix
        # On a Cluster the keys of two queues are in different slots: no command spans them.
        self._first_of = FirstOf(self.client) if isinstance(self.client, RedisCluster) else None
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._keys: dict[str, Keys] = {}
        self._queue_of: dict[bytes, str] = {}  # stream key -> queue name
        self._groups: set[str] = set()
        self._lock = threading.Lock()
        # Entries read in the round trip of a report that Redis refused (at maxmemory, say):
        # leased to this consumer, renewed with the worker's, and handed out once a report
        # goes through, instead of waiting out a lease nobody knows of.
        self._unreported_reads: list[Delivery] = []
        self._server_checked = False  # the eviction policy (check_server)
        # A blocking call must end well inside the socket timeout, or it reads as an outage.
        self._longest_block = max(0.05, opts.socket_timeout * 0.75)
        self._results = RedisResultBackend(self.client, self.keys, self.where,
                                           self._longest_block)

    def __repr__(self) -> str:
        return f"<RedisBroker {self.where}>"

    # -- helpers -----------------------------------------------------------------------------

    def keys(self, queue: str) -> Keys:
        keys = self._keys.get(queue)
        if keys is None:
            check_name("queue name", queue)
            keys = self._keys[queue] = Keys(self.prefix, queue)
            self._queue_of[keys.stream.encode()] = queue
        return keys

    def _pipeline(self) -> Any:
        return self.client.pipeline(transaction=False)

    def check_server(self) -> None:
        """Refuse a Redis that evicts queued jobs (see _memory.py); once per broker."""
        with self._lock:
            if self._server_checked:
                return
            with translate_errors(self.where):
                check_eviction(self.client, self.where, self.options.allow_eviction)
            self._server_checked = True

    def _ensure_groups(self, queues: Iterable[str]) -> None:
        missing = [q for q in queues if q not in self._groups]
        if not missing:
            return
        if not self._server_checked:  # a worker's or an admin call's first use
            self.check_server()
        pipe = self._pipeline()
        for queue in missing:
            # From id 0: messages enqueued before any worker existed are delivered too.
            pipe.xgroup_create(self.keys(queue).stream, GROUP, id="0", mkstream=True)
        for queue, reply in zip(missing, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, OutOfMemoryError):
                self._group_at_maxmemory(queue)
            elif isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply
            self._groups.add(queue)

    def _group_at_maxmemory(self, queue: str) -> None:
        """At maxmemory Redis refuses XGROUP CREATE before it looks for the group: find out
        whether it exists (enqueue makes it with the stream), or say what is wrong."""
        stream = self.keys(queue).stream
        if self.client.exists(stream) and any(
            text(g["name"]) == GROUP for g in self.client.xinfo_groups(stream)
        ):
            return
        raise BrokerError(
            f"Redis at {self.where} is out of memory (maxmemory) and refuses to create the "
            f"consumer group of queue {queue!r}, so no worker can read that queue (it was "
            "filled before any worker started, by an older tinyq, or by hand). Free memory: "
            "raise maxmemory (CONFIG SET maxmemory ...), or delete keys; the worker goes on "
            "by itself"
        )

    # -- producer ----------------------------------------------------------------------------

    def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        if not messages:
            return
        if not self._server_checked:  # a producer's first use
            self.check_server()
        if len(messages) == 1 and not durable and messages[0].due is None:
            # delay(): one script call, without the cost of building a pipeline.
            m = messages[0]
            keys = self._keys.get(m.queue) or self.keys(m.queue)
            with translate_errors(self.where):
                try:
                    ENQUEUE(self.client, keys.enqueue, (m.id, m.body))
                except redis.exceptions.OutOfMemoryError as exc:
                    # Refused before its first write: not in.
                    raise EnqueueError(out_of_memory(self.where)) from exc
            return
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
        pipe = self._pipeline()
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
        waits = self._add_wait(pipe, {*ready, *delayed}) if durable else 0
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

    def _check_chunks(self, chunks: list[list[str]], replies: list[Any]) -> None:
        """Raise the first error among ``replies``: EnqueueError naming the ids of the calls
        that went in when the only errors are calls refused for memory (refused before their
        first write: nothing of them went in), else the error as any other."""
        errors = [r for r in replies if isinstance(r, Exception)]
        if not errors:
            return
        if all(isinstance(e, redis.exceptions.OutOfMemoryError) for e in errors):
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

    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        if count <= 0:
            return []
        return self._reserve_with(self._pipeline(), queues, count, timeout)

    def settle_and_reserve(self, request: SettleRequest) -> list[Delivery]:
        """Results, acks and the next read in one pipeline: one round trip per batch. The
        server runs them in order, so a job is acknowledged only after its result is stored,
        and both happen before the read blocks."""
        pipe = self._pipeline()
        settled = self._add_settle(pipe, request.results, request.result_ttl, request.acks)
        if request.count <= 0:
            with translate_errors(self.where):
                replies = execute(self.client, pipe)
            self._report_lost(settled, replies, request.on_lost)
            return []
        return self._reserve_with(pipe, request.queues, request.count, request.timeout,
                                  lambda replies: self._report_lost(settled, replies,
                                                                    request.on_lost))

    @staticmethod
    def _report_lost(
        settled: list[list[Delivery]],
        replies: Sequence[Any],
        on_lost: Callable[[Sequence[Delivery]], None] | None,
    ) -> list[Delivery]:
        """The acks that found their entry no longer pending (its lease was lost): each
        settle script, first in the pipeline, returns their entry ids."""
        lost: list[Delivery] = []
        for done, reply in zip(settled, replies, strict=False):
            if reply:
                gone = {text(entry) for entry in reply}
                lost += [d for d in done if d.receipt in gone]
        if lost and on_lost is not None:
            on_lost(lost)
        return lost

    def _add_settle(
        self,
        pipe: Any,
        results: Sequence[Result],
        ttl: float,
        acks: Sequence[Delivery],
    ) -> list[list[Delivery]]:
        """Queue one settle script per queue: its results, then its acks. Returns the acks of
        each script, in order."""
        by_queue: dict[str, tuple[list[Result], list[Delivery]]] = {}
        for result in results:
            by_queue.setdefault(result.queue, ([], []))[0].append(result)
        for delivery in acks:
            by_queue.setdefault(delivery.queue, ([], []))[1].append(delivery)
        ttl_ms = max(1, int(ttl * 1000))
        for queue, (stored, done) in by_queue.items():
            keys = self.keys(queue)
            SETTLE.queue(
                pipe,
                [keys.stream, keys.jobs, keys.recovered,
                 *(keys.result(r.job_id) for r in stored)],
                [GROUP, ttl_ms, len(done), *(d.receipt for d in done), *(d.id for d in done),
                 *(r.body for r in stored)],
            )
        return [done for stored, done in by_queue.values()]

    def _reserve_with(
        self,
        pipe: Any,
        queues: Sequence[str],
        count: int,
        timeout: float,
        first: Callable[[list[Any]], object] | None = None,
    ) -> list[Delivery]:
        """Reserve with the commands already in ``pipe``; ``first`` gets the pipeline's
        replies (those before the read)."""
        with translate_errors(self.where):
            if self._unreported_reads:
                if len(pipe):
                    execute(self.client, pipe)  # the report; its error keeps them for later
                with self._lock:
                    kept, self._unreported_reads = self._unreported_reads, []
                return kept
            try:
                return self._reserve(pipe, queues, count, timeout, first)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The server lost its data (a restart without persistence, FLUSHALL): the
                # rest of the pipeline ran; create the groups again and only read again.
                self._groups.clear()
                return self._reserve(self._pipeline(), queues, count, 0)

    def _reserve(
        self,
        pipe: Any,
        queues: Sequence[str],
        count: int,
        timeout: float,
        first: Callable[[list[Any]], object] | None = None,
    ) -> list[Delivery]:
        self._ensure_groups(queues)
        # A blocking read must end well inside the socket timeout, or it reads as an outage.
        timeout = min(timeout, self._longest_block)
        block = max(1, int(timeout * 1000)) if timeout > 0 else None
        if len(queues) == 1:
            pipe.xreadgroup(GROUP, self.consumer, {self.keys(queues[0]).stream: ">"},
                            count=count, block=block)
            return self._read(pipe, first)
        streams = [self.keys(q).stream for q in queues]
        if self._first_of is not None:
            return self._reserve_across_slots(pipe, streams, count, block, first)
        RESERVE.queue(pipe, streams, (GROUP, self.consumer, count))
        deliveries = self._read(pipe, first)
        if not deliveries and block is not None:
            # All empty: wait for the first message on any of them, then top up in order.
            reply = self.client.xreadgroup(
                GROUP, self.consumer, dict.fromkeys(streams, ">"), count=1, block=block
            )
            deliveries = self._deliveries(reply)
            if deliveries and len(deliveries) < count:
                more = RESERVE(self.client, streams,
                               (GROUP, self.consumer, count - len(deliveries)))
                deliveries += self._deliveries(more)
        return deliveries

    def _reserve_across_slots(
        self,
        pipe: Any,
        streams: list[str],
        count: int,
        block: int | None,
        first: Callable[[list[Any]], object] | None = None,
    ) -> list[Delivery]:
        """Several queues on a Cluster: read them one by one in priority order (the first
        read rides ``pipe``) until ``count`` are leased; when all are empty, block on all
        at once and take one entry from each that has one."""
        pipe.xreadgroup(GROUP, self.consumer, {streams[0]: ">"}, count=count)
        deliveries = self._read(pipe, first)
        for stream in streams[1:]:
            if len(deliveries) >= count:
                break
            reply = self.client.xreadgroup(GROUP, self.consumer, {stream: ">"},
                                           count=count - len(deliveries))
            deliveries += self._deliveries(reply)
        if deliveries or block is None:
            return deliveries
        assert self._first_of is not None
        replies = self._first_of([
            (stream, ("XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", 1, "BLOCK", block,
                      "STREAMS", stream, ">"))
            for stream in streams
        ])
        return [d for reply in replies for d in self._deliveries(reply)]

    def _read(self, pipe: Any, first: Callable[[list[Any]], object] | None) -> list[Delivery]:
        """Run ``pipe`` (a report, then a read) and return what the read leased; ``first``
        gets the replies. When the report failed but the read went through, the entries are
        kept for the next call and the report's error raised: the worker sends the report
        again."""
        replies = execute(self.client, pipe, raise_on_error=False)
        errors = [r for r in replies if isinstance(r, Exception)]
        if errors:
            if not isinstance(replies[-1], Exception):
                deliveries = self._deliveries(replies[-1])
                with self._lock:
                    self._unreported_reads += deliveries
            raise errors[0]
        if first is not None:
            first(replies)
        return self._deliveries(replies[-1])

    def _deliveries(self, reply: Any) -> list[Delivery]:
        out: list[Delivery] = []
        recovered: list[int] = []  # indexes in out of entries that say they were recovered
        # A raw RESP3 reply (see _cluster.py) maps streams to entries; RESP2 lists pairs.
        for stream, entries in reply.items() if isinstance(reply, dict) else reply or ():
            queue = self._queue_of[stream if isinstance(stream, bytes) else stream.encode()]
            for entry_id, fields in entries:
                if isinstance(fields, list):  # from the Lua script: a flat list
                    fields = dict(zip(fields[::2], fields[1::2], strict=True))
                if not fields:  # deleted while pending; nothing to deliver
                    continue
                entry = text(entry_id)
                # A malformed entry (written by hand) still becomes a delivery, so that the
                # worker dead-letters it with a reason instead of choking on it.
                raw_id = fields.get(b"id") or f"entry:{entry}".encode()
                job_id = raw_id.decode(errors="replace") if isinstance(raw_id, bytes) else raw_id
                message = Message(job_id, queue, bytes(fields.get(b"b", b"")))
                if _count(fields.get(b"a")):
                    recovered.append(len(out))
                out.append(Delivery(message, 1, entry))
        if recovered:
            self._count_deliveries(out, recovered)
        return out

    def _count_deliveries(self, out: list[Delivery], recovered: list[int]) -> None:
        """Set the attempts of entries whose ``a`` field says they were recovered from the
        count recover.lua keeps server-side: anyone can XADD an entry with ``a=1000``, and
        that alone must not make a crash loop. A round trip only for batches holding such
        entries (after a worker died), not on the hot path."""
        pipe = self._pipeline()
        for i in recovered:
            pipe.hget(self.keys(out[i].queue).recovered, out[i].receipt)
        with translate_errors(self.where):
            counts = pipe.execute()
        for i, count in zip(recovered, counts, strict=True):
            out[i] = attrs.evolve(out[i], attempts=_count(count) + 1)

    def renew(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        with self._lock:
            deliveries = [*deliveries, *self._unreported_reads]
        if not deliveries:
            return []
        pipe = self._pipeline()
        for queue, entry_ids in self._by_queue(deliveries).items():
            # Claiming our own entries with JUSTID resets their idle time (the lease) and
            # leaves their delivery count alone. It returns the entries still pending: one
            # missing was recovered (its lease expired) and maybe runs elsewhere.
            pipe.xclaim(self.keys(queue).stream, GROUP, self.consumer, 0, entry_ids, justid=True)
        with translate_errors(self.where):
            replies = pipe.execute()
        held = {text(entry) for reply in replies for entry in reply or ()}
        return [d for d in deliveries if d.receipt not in held]

    @staticmethod
    def _by_queue(deliveries: Sequence[Delivery]) -> dict[str, list[Any]]:
        grouped: dict[str, list[Any]] = {}
        for delivery in deliveries:
            grouped.setdefault(delivery.queue, []).append(delivery.receipt)
        return grouped

    def ack(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        pipe = self._pipeline()
        settled = self._add_settle(pipe, (), 1, deliveries)
        with translate_errors(self.where):
            replies = execute(self.client, pipe)
        return self._report_lost(settled, replies, None)

    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        keys = self.keys(delivery.queue)
        body = delivery.message.body if body is None else body
        delay_ms = int(delay * 1000) if delay > 0 else 0
        with translate_errors(self.where):
            SCHEDULE(self.client, keys.schedule,
                     (GROUP, delivery.receipt, delivery.id, delay_ms, body))

    def dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        error: str = "",
        *,
        result: Result | None = None,
        result_ttl: float = 0.0,
        verified: bool = True,
    ) -> None:
        keys = self.keys(delivery.queue)
        args = [GROUP, delivery.receipt, delivery.id, delivery.message.body, reason, error,
                delivery.attempts, "1" if verified else "0"]
        stored = [keys.result(delivery.id)] if result is not None else []
        if result is not None:
            args += [max(1, int(result_ttl * 1000)), result.body]
        with translate_errors(self.where):
            DEAD_LETTER(self.client, (keys.stream, keys.dead, keys.jobs, keys.recovered,
                                      *stored), args)

    def recover(self, queues: Sequence[str]) -> int:
        """Scan each queue's whole pending list, at most RECOVER_SCAN entries read and
        RECOVER_BATCH recovered per script call (one pipeline per round over the queues), so
        no call holds Redis up for long."""
        recovered = 0
        cursors = dict.fromkeys(queues, "-")
        with translate_errors(self.where):
            self._ensure_groups(queues)
            min_idle = int(self.visibility_timeout * 1000)
            while cursors:
                pipe = self._pipeline()
                for queue, cursor in cursors.items():
                    keys = self.keys(queue)
                    RECOVER.queue(pipe, [keys.stream, keys.jobs, keys.recovered],
                                  (GROUP, min_idle, cursor, RECOVER_SCAN, RECOVER_BATCH))
                replies = execute(self.client, pipe)
                recovered += sum(int(n) for n, _ in replies)
                cursors = {queue: text(cursor) for queue, (_, cursor)
                           in zip(cursors, replies, strict=True) if cursor}
        return recovered

    def move_due(self, queues: Sequence[str]) -> float | None:
        with translate_errors(self.where):
            pipe = self._pipeline()
            for queue in queues:
                keys = self.keys(queue)
                MOVE_DUE.queue(pipe, (keys.stream, keys.delayed, keys.payloads, keys.jobs),
                               [MOVE_BATCH])
            replies = execute(self.client, pipe)
        if any(int(moved) >= MOVE_BATCH for moved, _ in replies):
            return 0.0  # more are due than one batch moves
        waits = [int(wait) for _, wait in replies if int(wait) >= 0]
        return min(waits) / 1000 if waits else None

    def wait_for_delayed(self, queues: Sequence[str], timeout: float) -> bool:
        # Redis checks blocking timeouts on its timer (10 times a second by default), so a
        # BLPOP can return up to 100 ms late. Block until shortly before the due time, and
        # sleep the last stretch here: the mover then moves the job on time.
        if timeout <= TIMER_SLACK:
            time.sleep(max(0.0, timeout))
            return True
        wait = min(timeout - TIMER_SLACK, self._longest_block)
        wakes = [self.keys(q).wake for q in queues]
        with translate_errors(self.where):
            if self._first_of is not None and len(wakes) > 1:
                self._first_of([(key, ("BLPOP", key, wait)) for key in wakes])
            else:
                self.client.blpop(wakes, timeout=wait)
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def ping(self) -> None:
        with translate_errors(self.where):
            self.client.ping()

    def result_backend(self) -> RedisResultBackend:
        return self._results

    def close(self) -> None:
        if self._first_of is not None:
            self._first_of.close()
        self.client.close()
