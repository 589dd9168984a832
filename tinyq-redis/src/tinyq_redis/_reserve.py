"""The consumer side of the Redis broker: reserving (with the worker's report in the same
round trip), reading deliveries out of replies, and the delivery counts of recovered
entries. A mixin of :class:`~tinyq_redis.RedisBroker`: it works on the broker's client and key
layout (see _broker.py for both)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import redis

from tinyq_core.plugin import Delivery, Message, Result, SettleRequest

from ._connection import translate_errors
from ._keys import GROUP, Keys, text
from ._scripts import RESERVE, SETTLE, execute


def _count(value: Any) -> int:
    """Earlier deliveries of an entry; 0 when absent or not a number (a hand-written entry)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


class RedisReserve:
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        consumer: str
        _first_of: Any
        _groups: set[str]
        _lock: threading.Lock
        _longest_block: float
        _queue_of: dict[bytes, str]
        _unreported_reads: list[Delivery]

        def keys(self, queue: str) -> Keys: ...

        def _pipeline(self) -> Any: ...

        def _ensure_groups(self, queues: Iterable[str]) -> None: ...

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
                if len(pipe):  # the report; its error keeps them for later
                    replies = execute(self.client, pipe)
                    if first is not None:
                        first(replies)
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
