"""Looking at messages on Redis without leasing them (``message``, ``messages``). A mixin of
:class:`~tinyq_redis.RedisBroker`'s admin tier.

A job's mark in ``:jobs`` names its stream entry (or ``d``: delayed), so one job is found
without a scan. Waiting entries are those after the consumer group's last-delivered id (the
entries before it that still exist are leased), read a page at a time with ``XRANGE ...
COUNT``; the delayed ones come from the ``:delayed`` sorted set, by due time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tinyq_core.plugin import Delivery, Message

from ._keys import GROUP, Keys, text

T = TypeVar("T")


def _message(queue: str, entry: Any) -> Message:
    fields = entry[1]
    raw_id = fields.get(b"id") or f"entry:{text(entry[0])}".encode()
    return Message(text(raw_id), queue, bytes(fields.get(b"b", b"")))


class RedisLookup:
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any

        def keys(self, queue: str) -> Keys: ...

        def _pipeline(self) -> Any: ...

        def _with_group(self, queue: str, call: Callable[[], T]) -> T: ...

    def message(self, job_id: str, queue: str = "default") -> Delivery | None:
        keys = self.keys(queue)

        def read() -> Delivery | None:
            mark = self.client.hget(keys.jobs, job_id)
            if mark is None:
                return None
            mark = text(mark)
            if mark == "d":
                pipe = self._pipeline()
                pipe.zscore(keys.delayed, job_id)
                pipe.hget(keys.payloads, job_id)
                due_ms, body = pipe.execute()
                if due_ms is None or body is None:
                    return None
                return Delivery(Message(job_id, queue, bytes(body), float(due_ms) / 1000), 0)
            pipe = self._pipeline()
            pipe.xrange(keys.stream, mark, mark)
            pipe.xpending_range(keys.stream, GROUP, mark, mark, 1)
            pipe.hget(keys.recovered, mark)
            entries, pending, recovered = pipe.execute()
            if not entries:  # an older version's mark ("q"), or an entry gone
                return None
            message = _message(queue, entries[0])
            if not pending:
                return Delivery(message, 0)
            return Delivery(message, int(recovered or 0) + 1, mark)

        return self._with_group(queue, read)

    def messages(self, queue: str, offset: int = 0, limit: int = 100) -> list[Message]:
        keys = self.keys(queue)
        offset, limit = max(0, offset), max(0, limit)

        def read() -> list[Message]:
            pipe = self._pipeline()
            pipe.xinfo_groups(keys.stream)
            pipe.xlen(keys.stream)
            pipe.xpending(keys.stream, GROUP)
            groups, length, pending = pipe.execute()
            group = next(g for g in groups if text(g["name"]) == GROUP)
            waiting = int(length) - int(pending["pending"])
            out: list[Message] = []
            if offset < waiting and limit:
                # Entries after the last delivered one: never delivered, so waiting. COUNT
                # bounds the read: a page of a big queue reads offset + limit entries.
                start = "(" + text(group["last-delivered-id"])
                entries = self.client.xrange(keys.stream, start, "+", count=offset + limit)
                out = [_message(queue, e) for e in entries[offset:]]
            more = limit - len(out)
            if more > 0:
                first = max(0, offset - waiting)
                delayed = self.client.zrange(keys.delayed, first, first + more - 1,
                                             withscores=True)
                if delayed:
                    bodies = self.client.hmget(keys.payloads, [m for m, _ in delayed])
                    out += [Message(text(m), queue, bytes(b), float(due) / 1000)
                            for (m, due), b in zip(delayed, bodies, strict=True)
                            if b is not None]
            return out

        return self._with_group(queue, read)
