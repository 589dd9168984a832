"""The optional tier behind chords (:class:`ChordRecords`): which members of a chord finished,
and the one step that enqueues its callback. A broker offers it by inheriting it beside
:class:`Broker`; the core checks with ``isinstance`` and refuses a chord without it.

The record is a set of member indexes, not a counter: a command sent twice (a client that
re-sends after a socket timeout, a member redelivered after its worker died) adds nothing the
second time, where an increment would count it twice and fire early or never.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ._types import Message


class ChordRecords(abc.ABC):
    """Chord fan-in: exactly one member's report enqueues the callback."""

    @abc.abstractmethod
    def chord_member_done(
        self,
        queue: str,
        chord_id: str,
        member: int,
        total: int,
        ttl: float,
        messages: Sequence[Message] = (),
    ) -> bool:
        """In one atomic step: record member ``member`` (an index below ``total``) of chord
        ``chord_id`` (of ``queue``) as done. When that call added the member and the record
        now holds all ``total`` of them, enqueue ``messages`` (the callback's, all of
        ``queue``, due now) as :meth:`Broker.enqueue` would, and return True. Otherwise
        (the member was recorded already, or others are missing) change nothing else and
        return False: True is returned once per chord, whatever the calls' order or
        repeats. The record expires ``ttl`` seconds after its last change."""
