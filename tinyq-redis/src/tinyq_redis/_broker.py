"""The Redis broker: one Stream with one consumer group per queue.

Keys of queue ``q`` (prefix ``tinyq``), all in one hash slot so every script is cluster-safe:
``{tinyq:q}:stream`` (the queue; an entry holds the job id ``id``, the body ``b`` and ``a``, the
deliveries before this entry), ``{tinyq:q}:delayed`` (sorted set of job ids by due time, ms, by
the server's clock), ``{tinyq:q}:payloads`` (job id -> body of delayed jobs), ``{tinyq:q}:wake``
(a one-item list that wakes a sleeping mover) and ``{tinyq:q}:dead`` (the dead letters, a
stream). Besides: ``tinyq:job:<id>``, the job's state for ``status()``.

Round trips (each one pipeline, whatever the batch size):
* enqueue of any number of jobs: 1 (XADD, or the schedule script for delayed jobs, and a SET
  of each job's state);
* the worker's report and next fetch: 1 (``settle_and_reserve``: the results, XACK + XDEL +
  DEL of the finished jobs' states, the previous batch's "started" states, then XREADGROUP
  ... COUNT n BLOCK t); several queues: 1 script (strict priority) in that pipeline, plus a
  blocking read when all are empty;
* ack alone (a worker reporting while its fetcher blocks): 1; renew of a batch: 1 (XCLAIM
  JUSTID);
* nack (a retry) and dead letter: 1 script each (2 round trips for a nack, to set the state);
* recovery and the mover: 1 script per queue, all pipelined; a lease expires after
  ``visibility_timeout`` of idle time in the pending list.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import redis

from tinyq_core import (
    Broker,
    ConfigurationError,
    DeadLetter,
    Delivery,
    JobStatus,
    Message,
    Result,
    ResultBackend,
)

from ._connection import Options, connect, translate_errors
from ._results import RedisResultBackend

GROUP = "tinyq"
RECOVER_BATCH = 1000
TIMER_SLACK = 0.1  # seconds: how late Redis may end a BLPOP (its default hz is 10)
MOVE_BATCH = 1000


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


SCHEDULE = _script("schedule.lua")
MOVE_DUE = _script("move_due.lua")
RECOVER = _script("recover.lua")
DEAD_LETTER = _script("dead_letter.lua")
REQUEUE_DEAD = _script("requeue_dead.lua")
PURGE = _script("purge.lua")
RESERVE = _script("reserve.lua")


class _Keys:
    __slots__ = ("dead", "delayed", "payloads", "stream", "wake")

    def __init__(self, prefix: str, queue: str) -> None:
        if not queue or any(c in queue for c in "{}"):
            raise ConfigurationError(f"queue name {queue!r} must be non-empty, without braces")
        tag = f"{{{prefix}:{queue}}}"
        self.stream = f"{tag}:stream"
        self.delayed = f"{tag}:delayed"
        self.payloads = f"{tag}:payloads"
        self.wake = f"{tag}:wake"
        self.dead = f"{tag}:dead"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBroker(Broker):
    """At-least-once delivery on Redis Streams; see the module docstring for the layout."""

    def __init__(
        self, uri: str = "redis://", *, client: redis.Redis | None = None, **options: Any
    ) -> None:
        """``client`` replaces the connection the URI describes (a fakeredis client in
        tests); the URI's tinyq options still apply."""
        made, opts, self.where = connect(uri, **options)
        self.client = client if client is not None else made
        self.options: Options = opts
        self.visibility_timeout = opts.visibility_timeout
        self.prefix = opts.prefix
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._keys: dict[str, _Keys] = {}
        self._queue_of: dict[str, str] = {}  # stream key -> queue name
        self._groups: set[str] = set()
        self._lock = threading.Lock()
        self._started: list[str] = []  # job ids reserved since the last pipeline
        self._results = RedisResultBackend(self.client, self.prefix, self.where)

    def __repr__(self) -> str:
        return f"<RedisBroker {self.where}>"

    # -- helpers -----------------------------------------------------------------------------

    def keys(self, queue: str) -> _Keys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = _Keys(self.prefix, queue)
            self._queue_of[keys.stream] = queue
        return keys

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _pipeline(self) -> redis.client.Pipeline:
        """A pipeline that first records the "started" state of jobs reserved earlier, so
        that costs no round trip of its own."""
        pipe = self.client.pipeline(transaction=False)
        with self._lock:
            started, self._started = self._started, []
        for job_id in started:
            pipe.set(self.job_key(job_id), "started")
        return pipe

    def _ensure_groups(self, queues: Iterable[str]) -> None:
        missing = [q for q in queues if q not in self._groups]
        if not missing:
            return
        pipe = self.client.pipeline(transaction=False)
        for queue in missing:
            # From id 0: messages enqueued before any worker existed are delivered too.
            pipe.xgroup_create(self.keys(queue).stream, GROUP, id="0", mkstream=True)
        for queue, reply in zip(missing, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply
            self._groups.add(queue)

    def _forget_groups(self) -> None:
        # The server lost its data (a restart without persistence, FLUSHALL): create again.
        self._groups.clear()

    # -- producer ----------------------------------------------------------------------------

    def enqueue(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        now = time.time()
        pipe = self._pipeline()
        delayed: dict[str, list[Message]] = {}
        for message in messages:
            if message.due is not None and message.due > now:
                delayed.setdefault(message.queue, []).append(message)
                continue
            keys = self.keys(message.queue)
            pipe.xadd(keys.stream, {"id": message.id, "b": message.body, "a": 0})
            pipe.set(self.job_key(message.id), "queued")
        for queue, batch in delayed.items():
            keys = self.keys(queue)
            args: list[Any] = [GROUP, ""]
            for message in batch:
                # Relative delays: the server's clock decides when it is due, not ours.
                args += [message.id, int(((message.due or now) - now) * 1000) or 1, message.body]
                pipe.set(self.job_key(message.id), "scheduled")
            pipe.eval(SCHEDULE, 4, keys.stream, keys.delayed, keys.payloads, keys.wake, *args)
        with translate_errors(self.where):
            pipe.execute()

    # -- consumer ----------------------------------------------------------------------------

    def reserve(self, queues: Sequence[str], count: int, timeout: float) -> list[Delivery]:
        if count <= 0:
            return []
        return self._reserve_with(self._pipeline(), queues, count, timeout)

    def settle_and_reserve(
        self,
        backend: ResultBackend,
        results: Sequence[Result],
        ttl: float,
        acks: Sequence[Delivery],
        queues: Sequence[str],
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Results, acks and the next read in one pipeline: one round trip per batch. The
        server runs them in order, so a job is acknowledged only after its result is stored,
        and both happen before the read blocks."""
        if backend is not self._results:
            return super().settle_and_reserve(backend, results, ttl, acks, queues, count, timeout)
        pipe = self._pipeline()
        self._results.add_store(pipe, results, ttl)
        self._add_ack(pipe, acks)
        if count <= 0:
            with translate_errors(self.where):
                pipe.execute()
            return []
        return self._reserve_with(pipe, queues, count, timeout)

    def _reserve_with(
        self, pipe: redis.client.Pipeline, queues: Sequence[str], count: int, timeout: float
    ) -> list[Delivery]:
        with translate_errors(self.where):
            try:
                return self._reserve(pipe, queues, count, timeout)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The reply to everything before the read was fine: only read again.
                self._forget_groups()
                return self._reserve(self._pipeline(), queues, count, 0)

    def _reserve(
        self, pipe: redis.client.Pipeline, queues: Sequence[str], count: int, timeout: float
    ) -> list[Delivery]:
        self._ensure_groups(queues)
        block = max(1, int(timeout * 1000)) if timeout > 0 else None
        if len(queues) == 1:
            pipe.xreadgroup(GROUP, self.consumer, {self.keys(queues[0]).stream: ">"},
                            count=count, block=block)
            deliveries = self._deliveries(pipe.execute()[-1])
        else:
            streams = [self.keys(q).stream for q in queues]
            pipe.eval(RESERVE, len(streams), *streams, GROUP, self.consumer, count)
            deliveries = self._deliveries(pipe.execute()[-1])
            if not deliveries and block is not None:
                # All empty: wait for the first message on any of them, then top up in order.
                reply = self.client.xreadgroup(
                    GROUP, self.consumer, dict.fromkeys(streams, ">"), count=1, block=block
                )
                deliveries = self._deliveries(reply)
                if deliveries and len(deliveries) < count:
                    more = self.client.eval(RESERVE, len(streams), *streams, GROUP,
                                            self.consumer, count - len(deliveries))
                    deliveries += self._deliveries(more)
        if deliveries:
            with self._lock:
                self._started += [d.id for d in deliveries]
        return deliveries

    def _deliveries(self, reply: Any) -> list[Delivery]:
        out: list[Delivery] = []
        for stream, entries in reply or ():
            queue = self._queue_of[_text(stream)]
            for entry_id, fields in entries:
                if isinstance(fields, list):  # from the Lua script: a flat list
                    fields = dict(zip(fields[::2], fields[1::2], strict=True))
                if not fields:  # deleted while pending; nothing to deliver
                    continue
                message = Message(_text(fields[b"id"]), queue, bytes(fields[b"b"]))
                attempts = int(fields.get(b"a", 0)) + 1
                out.append(Delivery(message, attempts, _text(entry_id)))
        return out

    def _by_queue(self, deliveries: Sequence[Delivery]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for delivery in deliveries:
            grouped.setdefault(delivery.queue, []).append(delivery.receipt)
        return grouped

    def renew(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        pipe = self._pipeline()
        for queue, entry_ids in self._by_queue(deliveries).items():
            # Claiming our own entries with JUSTID resets their idle time (the lease) and
            # leaves their delivery count alone.
            ids: list[Any] = list(entry_ids)
            pipe.xclaim(self.keys(queue).stream, GROUP, self.consumer, 0, ids, justid=True)
        with translate_errors(self.where):
            pipe.execute()

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        pipe = self._pipeline()
        self._add_ack(pipe, deliveries)
        with translate_errors(self.where):
            pipe.execute()

    def _add_ack(self, pipe: redis.client.Pipeline, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        for queue, entry_ids in self._by_queue(deliveries).items():
            stream = self.keys(queue).stream
            pipe.xack(stream, GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)
        pipe.delete(*(self.job_key(d.id) for d in deliveries))

    def nack(self, delivery: Delivery, delay: float = 0, body: bytes | None = None) -> None:
        keys = self.keys(delivery.queue)
        body = delivery.message.body if body is None else body
        delay_ms = int(delay * 1000) if delay > 0 else 0
        pipe = self._pipeline()
        pipe.eval(SCHEDULE, 4, keys.stream, keys.delayed, keys.payloads, keys.wake, GROUP,
                  delivery.receipt, delivery.id, delay_ms, body)
        with translate_errors(self.where):
            if pipe.execute()[-1]:
                self.client.set(self.job_key(delivery.id), "scheduled" if delay_ms else "queued")

    def dead_letter(self, delivery: Delivery, reason: str, error: str = "") -> None:
        keys = self.keys(delivery.queue)
        pipe = self._pipeline()
        pipe.eval(DEAD_LETTER, 2, keys.stream, keys.dead, GROUP, delivery.receipt, delivery.id,
                  delivery.message.body, reason, error, delivery.attempts)
        pipe.delete(self.job_key(delivery.id))
        with translate_errors(self.where):
            pipe.execute()

    def _mark_queued(self, job_ids: Sequence[Any]) -> None:
        if job_ids:
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.set(self.job_key(_text(job_id)), "queued")
            pipe.execute()

    def recover(self, queues: Sequence[str]) -> int:
        with translate_errors(self.where):
            self._ensure_groups(queues)
            pipe = self._pipeline()
            min_idle = int(self.visibility_timeout * 1000)
            for queue in queues:
                pipe.eval(RECOVER, 1, self.keys(queue).stream, GROUP, min_idle, RECOVER_BATCH)
            recovered = [job_id for ids in pipe.execute(raise_on_error=False)[-len(queues):]
                         if not isinstance(ids, Exception) for job_id in ids]
            self._mark_queued(recovered)
            return len(recovered)

    def move_due(self, queues: Sequence[str]) -> float | None:
        with translate_errors(self.where):
            pipe = self._pipeline()
            for queue in queues:
                keys = self.keys(queue)
                pipe.eval(MOVE_DUE, 3, keys.stream, keys.delayed, keys.payloads, MOVE_BATCH)
            replies = pipe.execute()[-len(queues):]
            moved = [job_id for reply in replies for job_id in reply[:-1]]
            self._mark_queued(moved)
            waits = [int(reply[-1]) for reply in replies if int(reply[-1]) >= 0]
            if any(len(reply) - 1 >= MOVE_BATCH for reply in replies):
                return 0.0  # more are due than one batch moves
            return min(waits) / 1000 if waits else None

    def wait_for_delayed(self, queues: Sequence[str], timeout: float) -> None:
        # Redis checks blocking timeouts on its timer (10 times a second by default), so a
        # BLPOP can return up to 100 ms late. Block until shortly before the due time, and
        # sleep the last stretch here: the mover then moves the job on time.
        if timeout <= TIMER_SLACK:
            time.sleep(max(0.0, timeout))
            return
        with translate_errors(self.where):
            self.client.blpop([self.keys(q).wake for q in queues], timeout=timeout - TIMER_SLACK)

    # -- inspection and administration -------------------------------------------------------

    def status(self, job_id: str) -> JobStatus:
        with translate_errors(self.where):
            self._pipeline().execute()  # first record pending "started" states
            state = self.client.get(self.job_key(job_id))
        if state in (b"queued", b"scheduled", b"started"):
            return _text(state)  # type: ignore[return-value]
        return "unknown"

    def size(self, queue: str) -> int:
        keys = self.keys(queue)
        with translate_errors(self.where):
            self._ensure_groups([queue])
            pipe = self.client.pipeline(transaction=False)
            pipe.xlen(keys.stream)
            pipe.xpending(keys.stream, GROUP)
            pipe.zcard(keys.delayed)
            length, pending, delayed = pipe.execute()
        return int(length) - int(pending["pending"]) + int(delayed)

    def purge(self, queue: str) -> int:
        keys = self.keys(queue)
        with translate_errors(self.where):
            self._ensure_groups([queue])
            ids = self.client.eval(PURGE, 3, keys.stream, keys.delayed, keys.payloads, GROUP)
            if ids:
                self.client.delete(*(self.job_key(_text(i)) for i in ids))
        return len(ids)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        with translate_errors(self.where):
            entries: Any = self.client.xrange(self.keys(queue).dead, count=limit)
        letters = []
        for _, fields in entries:
            message = Message(_text(fields[b"id"]), queue, bytes(fields[b"b"]))
            letters.append(DeadLetter(
                message, _text(fields[b"reason"]), _text(fields.get(b"error", b"")),
                int(fields.get(b"attempts", 0)), float(fields.get(b"at", 0)),
            ))
        return letters

    def requeue_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        keys = self.keys(queue)
        args = ["all"] if ids is None else ["some", *ids]
        with translate_errors(self.where):
            requeued = self.client.eval(REQUEUE_DEAD, 2, keys.stream, keys.dead, *args)
            self._mark_queued(requeued)
        return len(requeued)

    def purge_dead_letters(self, queue: str) -> int:
        dead = self.keys(queue).dead
        with translate_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.xlen(dead)
            pipe.delete(dead)
            count, _ = pipe.execute()
        return int(count)

    # -- lifecycle ---------------------------------------------------------------------------

    def ping(self) -> None:
        with translate_errors(self.where):
            self.client.ping()

    def result_backend(self) -> RedisResultBackend:
        return self._results

    def close(self) -> None:
        try:
            with translate_errors(self.where):
                self._pipeline().execute()
        except Exception:  # closing must not fail; these states are advisory
            pass
        self.client.close()
