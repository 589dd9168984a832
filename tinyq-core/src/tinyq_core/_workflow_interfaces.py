"""The optional tier behind chords (:class:`ChordRecords`): which members of a chord finished,
and the one step that enqueues its callback. A broker offers it by inheriting it beside
:class:`Broker`; the core checks with ``isinstance`` and refuses a chord without it.

The record is a set of member indexes, not a counter: a command sent twice (a client that
re-sends after a socket timeout, a member redelivered after its worker died) adds nothing the
second time, where an increment would count it twice and fire early or never.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import attrs

from ._types import Message, Result

# The callback's messages, or what builds them: called only by a report that completes the
# record (so the enqueue hooks run for the one callback that goes in, not once per member).
Callback = Sequence[Message] | Callable[[], Sequence[Message]]


@attrs.frozen
class ChordReport:
    """One call of :meth:`ChordRecords.chord_member_done`, for :meth:`chord_members_done`."""

    queue: str
    chord_id: str
    member: int
    total: int
    messages: Callback = ()
    results: Sequence[Result] = ()


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
        messages: Callback = (),
        *,
        results: Sequence[Result] = (),
    ) -> bool:
        """In one atomic step: record member ``member`` (an index below ``total``) of chord
        ``chord_id`` (of ``queue``) as done. When that call added the member and the record
        now holds all ``total`` of them, enqueue ``messages`` (the callback's, all of
        ``queue``, due now) as :meth:`Broker.enqueue` would, and return True. Otherwise
        (the member was recorded already, or others are missing) change nothing else and
        return False: True is returned once per chord, whatever the calls' order or
        repeats. The record expires ``ttl`` seconds after its last change.

        ``messages`` may be a callable returning them: it is called only when this report
        would complete the record (not for a member recorded already), before the step that
        enqueues them; a report that raced another one sent for the same member may call
        it and still return False. ``results`` are stored (with ``ttl``, in the broker's
        own result backend) before the record changes, in the same step where the broker
        can: a chord member's result, which its callback reads."""

    def chord_members_done(self, reports: Sequence[ChordReport], ttl: float) -> list[bool]:
        """Several reports, in order, each as :meth:`chord_member_done` makes it (each one
        atomic, not the whole), and what each returned: a worker's batch of chord members.
        The default makes them one by one; a broker that can send them in one round trip
        overrides it. An error raises: the caller makes them all again (they are
        idempotent)."""
        return [self.chord_member_done(r.queue, r.chord_id, r.member, r.total, ttl,
                                       r.messages, results=r.results) for r in reports]
