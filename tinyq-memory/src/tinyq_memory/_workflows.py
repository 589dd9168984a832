"""Chord records on the memory broker (:class:`ChordRecords`). A mixin of
:class:`~tinyq_memory.MemoryBroker`: each record is a set of member indexes beside its
messages, under its condition, so the report that completes it and its callback's enqueue are
one step."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from tinyq_core.plugin import ChordRecords, Message, Result

from ._clock import Clock

if TYPE_CHECKING:
    from ._results import MemoryResultBackend


@attrs.define
class _Record:
    members: set[int]
    expires: float


class MemoryChordRecords(ChordRecords):
    if TYPE_CHECKING:  # provided by MemoryBroker
        clock: Clock
        _cond: threading.Condition

        def _check(self) -> None: ...

        def enqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None: ...

        def result_backend(self) -> MemoryResultBackend: ...

    @property
    def _chords(self) -> dict[tuple[str, str], _Record]:
        """(queue, chord id) -> record; made on first use (MemoryBroker's __init__ is not
        ours)."""
        chords: dict[tuple[str, str], _Record] = self.__dict__.setdefault("_chord_records", {})
        return chords

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
        with self._cond:
            self._check()
            if results:
                self.result_backend().store(results, ttl)
            now = self.clock.time()
            record = self._chords.get((queue, chord_id))
            if record is None or record.expires <= now:
                record = self._chords[queue, chord_id] = _Record(set(), now + ttl)
            record.expires = now + ttl
            if member in record.members:
                return False
            record.members.add(member)
            if len(record.members) != total:
                return False
            if callable(messages):
                messages = messages()
            if messages:
                self.enqueue(messages)  # the condition's lock is re-entrant
            return True
