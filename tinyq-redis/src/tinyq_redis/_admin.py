"""The admin tier of the Redis broker (status, sizes, queues, purges, dead letters), kept apart
from the delivery path. A mixin of :class:`~tinyq_redis.RedisBroker`: it works on the broker's
client and key layout."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from tinyq_core.plugin import BrokerAdmin, DeadLetter, JobStatus, Message

from ._connection import translate_errors
from ._keys import GROUP, Keys, text
from ._scripts import PURGE, REQUEUE_DEAD, STATUS

T = TypeVar("T")


class RedisAdmin(BrokerAdmin):
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
        state = self._with_group(
            queue, lambda: text(STATUS(self.client, (keys.stream, keys.jobs), (GROUP, job_id)))
        )
        return state  # type: ignore[return-value]

    def size(self, queue: str) -> int:
        keys = self.keys(queue)

        def read() -> int:
            pipe = self.client.pipeline(transaction=False)
            pipe.xlen(keys.stream)
            pipe.xpending(keys.stream, GROUP)
            pipe.zcard(keys.delayed)
            length, pending, delayed = pipe.execute()
            return int(length) - int(pending["pending"]) + int(delayed)

        return self._with_group(queue, read)

    def count_leased(self, queue: str) -> int:
        stream = self.keys(queue).stream
        return self._with_group(
            queue, lambda: int(self.client.xpending(stream, GROUP)["pending"])
        )

    def queues(self) -> list[str]:
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
        return sorted({name for (name, _), size in zip(found, sizes, strict=True)
                       if not isinstance(size, Exception) and int(size) > 0})

    def purge(self, queue: str) -> int:
        keys = self.keys(queue)
        return self._with_group(queue, lambda: int(PURGE(
            self.client, (keys.stream, keys.delayed, keys.payloads, keys.jobs,
                          keys.recovered), [GROUP]
        )))

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
        keys = self.keys(queue)
        args = [keys.results, "all"] if ids is None else [keys.results, "some", *ids]
        with translate_errors(self.where):
            return int(REQUEUE_DEAD(self.client, (keys.stream, keys.dead, keys.jobs), args))

    def purge_dead_letters(self, queue: str) -> int:
        dead = self.keys(queue).dead
        with translate_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.xlen(dead)
            pipe.delete(dead)
            count, _ = pipe.execute()
        return int(count)
