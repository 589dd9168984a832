"""Chord records on the Redis broker (:class:`ChordRecords`). A mixin of
:class:`~tinyq_redis.RedisBroker`: each record is a set under its queue's hash tag, so the
report that completes it and the callback's enqueue are one script in one Cluster slot
(chord_member_done.lua)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tinyq_core.plugin import ChordRecords, Message, Result

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

        def result_backend(self) -> Any: ...

    def chord_member_done(
        self,
        queue: str,
        chord_id: str,
        member: int,
        total: int,
        ttl: float,
        messages: Sequence[Message] | Callable[[], Sequence[Message]] = (),
        *,
        results: Sequence[Result] = (),
    ) -> bool:
        if not self._server_checked:
            self.check_server()
        # Successes beside the record (its queue's hash tag) go in the script; others first,
        # on their own (another Cluster slot; a failure's rule): the callback reads them all.
        beside = [r for r in results if r.queue == queue and r.ok]
        elsewhere = [r for r in results if r.queue != queue or not r.ok]
        if elsewhere:
            self.result_backend().store(elsewhere, ttl)
        if callable(messages):  # the last member builds the callback: a second call
            fired = self._report(queue, chord_id, member, total, ttl, beside, None)
            if fired >= 0:
                return bool(fired)
            messages = messages()
            beside = []  # stored by the first call
        return bool(self._report(queue, chord_id, member, total, ttl, beside, messages))

    def _report(self, queue: str, chord_id: str, member: int, total: int, ttl: float,
                results: Sequence[Result], messages: Sequence[Message] | None) -> int:
        """One script call; ``messages`` None: ask (-1 when this report would complete it)."""
        if any(m.queue != queue for m in messages or ()):
            raise ValueError(f"a chord's callback messages must be of its queue {queue!r}")
        if messages:
            self._record_queues(messages)
        keys = self.keys(queue)
        args: list[Any] = [member, total, max(1, int(ttl * 1000)), GROUP,
                           "1" if messages is None else "0", len(results)]
        for r in results:
            args += [r.job_id, r.body]
        for m in messages or ():
            args += [m.id, m.body]
        with translate_errors(self.where):
            return int(CHORD_MEMBER_DONE(
                self.client, (chord_key(self.prefix, queue, chord_id), keys.stream, keys.jobs,
                              keys.delayed, keys.results), args))
