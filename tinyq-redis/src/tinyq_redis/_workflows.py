"""Chord records on the Redis broker (:class:`ChordRecords`). A mixin of
:class:`~tinyq_redis.RedisBroker`: each record is a set under its queue's hash tag, so the
report that completes it and the callback's enqueue are one script in one Cluster slot
(chord_member_done.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tinyq_core.plugin import ChordRecords, Message

from ._connection import translate_errors
from ._keys import GROUP, Keys
from ._scripts import Lua

CHORD_MEMBER_DONE = Lua("chord_member_done.lua")


def chord_key(prefix: str, queue: str, chord_id: str) -> str:
    """Chord ``chord_id``'s record: beside the queue's keys, in its slot."""
    return f"{{{prefix}:{queue}}}:chord:{chord_id}"


class RedisChordRecords(ChordRecords):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        prefix: str
        _server_checked: bool

        def keys(self, queue: str) -> Keys: ...

        def check_server(self) -> None: ...

        def _record_queues(self, messages: Any) -> None: ...

    def chord_member_done(
        self,
        queue: str,
        chord_id: str,
        member: int,
        total: int,
        ttl: float,
        messages: Sequence[Message] = (),
    ) -> bool:
        if any(m.queue != queue for m in messages):
            raise ValueError(f"a chord's callback messages must be of its queue {queue!r}")
        if not self._server_checked:
            self.check_server()
        if messages:
            self._record_queues(messages)
        keys = self.keys(queue)
        args: list[Any] = [member, total, max(1, int(ttl * 1000)), GROUP]
        for m in messages:
            args += [m.id, m.body]
        with translate_errors(self.where):
            return bool(CHORD_MEMBER_DONE(
                self.client, (chord_key(self.prefix, queue, chord_id), keys.stream, keys.jobs,
                              keys.delayed, keys.results), args))
