"""The admin tier of the Redis broker (status, sizes, queues, purges, dead letters), kept apart
from the delivery path. A mixin of :class:`~tinyq_redis.RedisBroker`: it works on the broker's
client and key layout."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from tinyq_core.plugin import BrokerAdmin, DeadLetter, JobStatus, Message, QueueCounts

from ._connection import translate_errors
from ._keys import GROUP, Keys, queues_key, text
from ._lookup import RedisLookup
from ._scripts import PURGE, REQUEUE_DEAD, STATUS

T = TypeVar("T")

# Entries one admin script call handles at most, however big the queue: measured CPU per
# call, purge ~1.3 ms, requeue of dead letters ~3.4 ms, the status scan of an older mark
# ~2 ms. The Python loop around the calls adds up the true count; Redis serves other clients
# between them.
ADMIN_CHUNK = 250


class RedisAdmin(RedisLookup, BrokerAdmin):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        prefix: str

        def keys(self, queue: str) -> Keys: ...

        def _ensure_groups(self, queues: Iterable[str]) -> None: ...

        _groups: set[str]

    def _with_group(self, queue: str, call: Callable[[], T]) -> T:
        """``call()`` once ``queue``'s consumer group exists. The broker creates each group
        once and remembers it; a NOGROUP then means the server lost its data since (a restart
        without persistence, FLUSHALL): forget every group, make this one again and call once
        more. Without this a long-lived producer would fail on every call from then on."""
        with translate_errors(self.where):
            self._ensure_groups([queue])
            try:
                return call()
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._groups.clear()  # the loss took every queue's group, not only this one
                self._ensure_groups([queue])
                return call()

    def status(self, job_id: str, queue: str = "default") -> JobStatus:
        keys = self.keys(queue)

        def read() -> JobStatus:
            # One call, unless the job's mark is an older version's: then the pending list
            # is scanned a chunk per call, the script answering where to go on from.
            cursor = "-"
            while True:
                state = text(STATUS(self.client, (keys.stream, keys.jobs, keys.delayed),
                                    (GROUP, job_id, cursor, ADMIN_CHUNK)))
                if not state.startswith("("):
                    return state  # type: ignore[return-value]
                cursor = state

        return self._with_group(queue, read)

    def size(self, queue: str) -> int:
        counts = self.counts(queue)  # the same round trip, plus one XLEN
        return counts.ready + counts.scheduled

    def counts(self, queue: str) -> QueueCounts:
        keys = self.keys(queue)

        def read() -> QueueCounts:
            # Four O(1) reads in one round trip. A stream entry is deleted when acked, so
            # the stream holds the ready entries and the pending (leased) ones.
            pipe = self.client.pipeline(transaction=False)
            pipe.xlen(keys.stream)
            pipe.xpending(keys.stream, GROUP)
            pipe.zcard(keys.delayed)
            pipe.xlen(keys.dead)
            length, pending, delayed, dead = pipe.execute()
            leased = int(pending["pending"])
            return QueueCounts(int(length) - leased, int(delayed), leased, int(dead))

        return self._with_group(queue, read)

    def count_leased(self, queue: str) -> int:
        stream = self.keys(queue).stream
        return self._with_group(
            queue, lambda: int(self.client.xpending(stream, GROUP)["pending"])
        )

    def queues(self) -> list[str]:
        # The queues jobs were sent to (the set enqueue writes), and those holding messages
        # or dead letters (found by a scan: also queues from before the set existed).
        with translate_errors(self.where):
            known = {text(name) for name in self.client.smembers(queues_key(self.prefix))}
        return sorted(known | set(self._holding()))

    def _holding(self) -> list[str]:
        # SCAN, never KEYS: a few keys per call, so Redis is never held up; on a Cluster
        # redis-py scans every primary. Glob characters in the prefix are escaped.
        tag = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        found: list[tuple[str, str]] = []  # (queue, key)
        with translate_errors(self.where):
            for suffix in ("stream", "delayed", "dead"):
                for key in self.client.scan_iter(match=f"{{{tag}:*}}:{suffix}", count=1000):
                    name = text(key)[len(self.prefix) + 2 : -len(suffix) - 2]
                    if name:
                        found.append((name, text(key)))
            # A stream outlives its entries (its consumer group keeps it): count them.
            pipe = self.client.pipeline(transaction=False)
            for _, key in found:
                if key.endswith(":delayed"):
                    pipe.zcard(key)
                else:
                    pipe.xlen(key)
            sizes = pipe.execute(raise_on_error=False)
        # An error is a key of another type that happens to match (not a queue's).
        return [name for (name, _), size in zip(found, sizes, strict=True)
                if not isinstance(size, Exception) and int(size) > 0]

    def purge(self, queue: str) -> int:
        keys = self.keys(queue)
        purged = 0  # kept across a NOGROUP retry: what was deleted stays counted

        def run() -> int:
            nonlocal purged
            # Up to the last entry there now: jobs enqueued meanwhile stay, and the loop ends.
            last: Any = self.client.xrevrange(keys.stream, count=1)
            end = text(last[0][0]) if last else "0-0"
            while True:
                deleted, more = PURGE(self.client,
                                      (keys.stream, keys.delayed, keys.payloads, keys.jobs,
                                       keys.recovered), (GROUP, end, ADMIN_CHUNK))
                purged += int(deleted)
                if not int(more):
                    return purged

        return self._with_group(queue, run)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        with translate_errors(self.where):
            entries: Any = self.client.xrange(self.keys(queue).dead, count=limit)
        letters = []
        for _, fields in entries:
            message = Message(text(fields[b"id"]), queue, bytes(fields[b"b"]))
            letters.append(DeadLetter(
                message, text(fields[b"reason"]), text(fields.get(b"error", b"")),
                int(fields.get(b"attempts", 0)), float(fields.get(b"at", 0)),
            ))
        return letters

    def requeue_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return self._take_dead_letters(queue, ["all"] if ids is None else ["some", *ids])

    def _take_dead_letters(self, queue: str, chosen: list[str]) -> int:
        """Requeue (``"all"``, ``"some", *ids``) or delete (``"drop", *ids``) dead letters,
        a chunk per call of requeue_dead.lua."""
        keys = self.keys(queue)
        requeued = 0
        with translate_errors(self.where):
            # Up to the last dead letter there now: a requeued job that dies again meanwhile
            # stays dead, instead of keeping the loop going.
            last: Any = self.client.xrevrange(keys.dead, count=1)
            cursor = "-" if last else ""
            while cursor:
                count, after = REQUEUE_DEAD(
                    self.client, (keys.stream, keys.dead, keys.jobs),
                    [keys.results, cursor, text(last[0][0]), ADMIN_CHUNK, *chosen],
                )
                requeued += int(count)
                cursor = text(after)
        return requeued

    def purge_dead_letters(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if ids is not None:
            return self._take_dead_letters(queue, ["drop", *ids])
        dead = self.keys(queue).dead
        with translate_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.xlen(dead)
            pipe.unlink(dead)  # freed in the background: a big stream holds nobody up
            count, _ = pipe.execute()
        return int(count)
