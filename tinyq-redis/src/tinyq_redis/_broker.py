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
* enqueue of any number of jobs: 1 (per queue one script call per 1,000 jobs, see
  _enqueue.py: each job checked against its mark and its stored result, then XADD + HSET; the
  schedule script for delayed jobs);
* the worker's report and next fetch (_reserve.py): 1 (``settle_and_reserve``: per queue
  one settle script storing the results, then XACK + XDEL + HDEL of each entry still pending
  (a late ack of a recovered entry touches nothing; the HDEL only a mark naming that entry);
  then XREADGROUP ... COUNT n BLOCK t); several queues: the priority script in that
  pipeline, plus a blocking read when all are empty (on a Cluster, where queues live in
  different slots: one read per queue, in priority order, until the batch is full; when all
  are empty, one blocking read per queue at once, see _cluster.py);
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
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import OutOfMemoryError

from tinyq_core.plugin import (
    Broker,
    Delivery,
    Result,
)

from ._admin import RedisAdmin
from ._async import RedisAsyncTier
from ._cancel import RedisCancel
from ._cluster import FirstOf
from ._connection import Options, connect, translate_errors
from ._enqueue import RedisEnqueue
from ._keys import GROUP, Keys, check_name, text
from ._limits import RedisJobLimits
from ._memory import check_eviction, check_group_at_maxmemory
from ._registry import RedisRegistry
from ._reserve import RedisReserve
from ._results import RedisResultBackend
from ._schedules import RedisSchedules
from ._scripts import DEAD_LETTER, MOVE_DUE, RECOVER, SCHEDULE, execute, load_all
from ._unique import RedisUniqueLocks
from ._workflows import RedisChordRecords

RECOVER_BATCH = 200  # expired leases recovered per script call (each call: a few ms)
RECOVER_SCAN = 1000  # pending entries read per call, most often the whole pending list
MOVE_BATCH = 1000
TIMER_SLACK = 0.1  # seconds: how late Redis may end a BLPOP (its default hz is 10)


class RedisBroker(RedisEnqueue, RedisReserve, RedisAdmin, RedisRegistry, RedisUniqueLocks,
                  RedisSchedules, RedisCancel, RedisJobLimits, RedisAsyncTier,
                  RedisChordRecords, Broker):
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
        self._async_args = (uri, options) if client is None else None  # see _async.py
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
        self._known_queues: set[str] = set()
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
        """Refuse a Redis that evicts queued jobs (see _memory.py), once per broker; and, at
        every call (a worker starting), load the scripts, so that none of its pipelines meets
        NOSCRIPT behind a blocking read on a server that restarted since this broker's first
        use."""
        with self._lock:
            if not self._server_checked:
                with translate_errors(self.where):
                    check_eviction(self.client, self.where, self.options.allow_eviction)
                self._server_checked = True
        with translate_errors(self.where):
            load_all(self.client)

    def _ensure_groups(self, queues: Iterable[str]) -> None:
        missing = [q for q in queues if q not in self._groups]
        if not missing:
            return
        if not self._server_checked:  # a worker's or an admin call's first use
            self.check_server()
        load_all(self.client)  # first use, or the server lost its data (scripts too)
        pipe = self._pipeline()
        for queue in missing:
            # From id 0: messages enqueued before any worker existed are delivered too.
            pipe.xgroup_create(self.keys(queue).stream, GROUP, id="0", mkstream=True)
        for queue, reply in zip(missing, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, OutOfMemoryError):
                check_group_at_maxmemory(self.client, self.where, self.keys(queue).stream,
                                         queue)
            elif isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply
            self._groups.add(queue)

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

    def wake_delayed_waiters(self, queues: Sequence[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:  # as an enqueue of a delayed job wakes them (schedule.lua)
            pipe.lpush(self.keys(queue).wake, 1)
            pipe.ltrim(self.keys(queue).wake, 0, 0)
        with translate_errors(self.where):
            pipe.execute()

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
