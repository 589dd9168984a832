"""Chord records on the Redis broker (:class:`ChordRecords`). A mixin of
:class:`~tinyq_redis.RedisBroker`: each record is a set under its queue's hash tag, so the
report that completes it and the callback's enqueue are one script in one Cluster slot
(chord_member_done.lua)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tinyq_core.plugin import ChordRecords, ChordReport, Message, Result

from ._connection import translate_errors
from ._keys import GROUP, Keys
from ._scripts import Lua, execute

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

        def _pipeline(self) -> Any: ...

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
        return self.chord_members_done(
            [ChordReport(queue, chord_id, member, total, messages, results)], ttl)[0]

    def chord_members_done(self, reports: Sequence[ChordReport], ttl: float) -> list[bool]:
        """One pipeline for them all; a callable's messages (the last member's callback)
        take a second call, once per chord."""
        if not self._server_checked:
            self.check_server()
        # Successes beside the record (its queue's hash tag) go in the script; others first,
        # on their own (another Cluster slot; a failure's rule): the callback reads them all.
        elsewhere = [r for rep in reports for r in rep.results if not _beside(rep, r)]
        if elsewhere:
            self.result_backend().store(elsewhere, ttl)
        pipe = self._pipeline()
        for rep in reports:
            messages = None if callable(rep.messages) else rep.messages
            self._queue_report(pipe, rep, ttl, [r for r in rep.results if _beside(rep, r)],
                               messages)
        with translate_errors(self.where):
            replies = [int(n) for n in execute(self.client, pipe)]
        for index, (rep, reply) in enumerate(zip(reports, replies, strict=True)):
            if reply < 0:  # the last member: now its callback, results stored already
                pipe = self._pipeline()
                self._queue_report(pipe, rep, ttl, [], rep.messages())  # type: ignore[operator]
                with translate_errors(self.where):
                    replies[index] = int(execute(self.client, pipe)[0])
        return [reply > 0 for reply in replies]

    def _queue_report(self, pipe: Any, rep: ChordReport, ttl: float,
                      results: Sequence[Result], messages: Sequence[Message] | None) -> None:
        """One script call; ``messages`` None: ask (-1 when this report would complete it)."""
        queue = rep.queue
        if any(m.queue != queue for m in messages or ()):
            raise ValueError(f"a chord's callback messages must be of its queue {queue!r}")
        if messages:
            self._record_queues(messages)
        keys = self.keys(queue)
        args: list[Any] = [rep.member, rep.total, max(1, int(ttl * 1000)), GROUP,
                           "1" if messages is None else "0", len(results)]
        for r in results:
            args += [r.job_id, r.body]
        for m in messages or ():
            args += [m.id, m.body]
        CHORD_MEMBER_DONE.queue(pipe, (chord_key(self.prefix, queue, rep.chord_id), keys.stream,
                                       keys.jobs, keys.delayed, keys.results), args)


def _beside(report: ChordReport, result: Result) -> bool:
    """Whether ``result`` is stored by the report's script: a success of the record's queue."""
    return result.queue == report.queue and result.ok
