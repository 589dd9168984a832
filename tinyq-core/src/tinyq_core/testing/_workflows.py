"""The chord-records tier (:class:`ChordRecords`): a set of members done per chord, and the
one report that completes it enqueues the callback. Every test takes the ``chords`` fixture,
which skips them for a broker without the tier."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from .._interfaces import Broker
from .._types import Message, Result
from .._workflow_interfaces import ChordRecords, ChordReport
from ._support import GRACE, ContractBase, new_message, new_queue

TTL = 3600.0  # a record's lifetime where a test does not look at it


def new_chord() -> str:
    return f"contract-chord-{uuid.uuid4().hex[:12]}"


class ChordContract(ContractBase):
    @pytest.fixture
    def chords(self, broker: Broker) -> ChordRecords:
        """The broker as its chord-records tier; those tests are skipped without it."""
        if not isinstance(broker, ChordRecords):
            pytest.skip(f"{type(broker).__name__} is not a ChordRecords: tier not offered")
        return broker

    def test_the_last_member_fires_and_enqueues_the_callback(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, chord = new_queue(), new_chord()
        callback = new_message(queue)
        assert chords.chord_member_done(queue, chord, 0, 3, TTL, [callback]) is False
        assert chords.chord_member_done(queue, chord, 2, 3, TTL, [callback]) is False
        assert broker.reserve([queue], 10, 0) == []  # nothing before the last member
        assert chords.chord_member_done(queue, chord, 1, 3, TTL, [callback]) is True
        [delivery] = self.reserve_exactly(broker, queue, 1)
        assert (delivery.id, delivery.message.body) == (callback.id, callback.body)

    def test_a_member_reported_twice_counts_once(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, chord = new_queue(), new_chord()
        assert chords.chord_member_done(queue, chord, 0, 2, TTL) is False
        assert chords.chord_member_done(queue, chord, 0, 2, TTL) is False  # a re-send
        assert chords.chord_member_done(queue, chord, 1, 2, TTL) is True

    def test_a_report_sent_again_after_the_firing_one_returns_false(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, chord = new_queue(), new_chord()
        callback = new_message(queue)
        assert chords.chord_member_done(queue, chord, 0, 2, TTL, [callback]) is False
        assert chords.chord_member_done(queue, chord, 1, 2, TTL, [callback]) is True
        # The firing call's reply lost and the call re-sent, or its member redelivered:
        assert chords.chord_member_done(queue, chord, 1, 2, TTL, [callback]) is False
        assert chords.chord_member_done(queue, chord, 0, 2, TTL, [callback]) is False
        assert self.reserve_all(broker, queue) == [callback.id]  # enqueued once

    def test_exactly_one_of_eight_racing_threads_fires(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, chord = new_queue(), new_chord()
        callback = new_message(queue)
        barrier = threading.Barrier(8)
        fired: list[bool] = []

        def member(index: int) -> None:
            barrier.wait()
            # Each member reports twice, as a redelivered one would.
            for _ in range(2):
                fired.append(chords.chord_member_done(queue, chord, index, 8, TTL, [callback]))

        threads = [threading.Thread(target=member, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(fired) == [False] * 15 + [True]
        assert self.reserve_all(broker, queue) == [callback.id]

    def test_chords_are_kept_apart_by_id_and_queue(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, other, chord = new_queue(), new_queue(), new_chord()
        assert chords.chord_member_done(queue, chord, 0, 2, TTL) is False
        assert chords.chord_member_done(other, chord, 1, 2, TTL) is False
        assert chords.chord_member_done(queue, new_chord(), 1, 2, TTL) is False
        assert chords.chord_member_done(queue, chord, 1, 2, TTL) is True

    def test_a_record_expires_its_ttl_after_its_last_change(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, chord = new_queue(), new_chord()
        assert chords.chord_member_done(queue, chord, 0, 3, 1.0) is False
        self.advance(broker, 0.6)
        assert chords.chord_member_done(queue, chord, 1, 3, 1.0) is False  # renews it
        self.advance(broker, 0.6)
        # Still there (1.2 s after the first report, 0.6 s after the last change):
        assert chords.chord_member_done(queue, chord, 0, 3, 1.0) is False
        self.advance(broker, 1.0 + GRACE)
        # Gone: member 1 again is new, and 2 alone does not complete it.
        assert chords.chord_member_done(queue, chord, 1, 3, TTL) is False
        assert chords.chord_member_done(queue, chord, 2, 3, TTL) is False
        assert chords.chord_member_done(queue, chord, 0, 3, TTL) is True

    def test_a_builder_of_the_callback_is_called_by_the_completing_report_only(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, chord = new_queue(), new_chord()
        callback = new_message(queue)
        built: list[int] = []

        def build(member: int) -> Callable[[], list[Message]]:
            return lambda: built.append(member) or [callback]  # type: ignore[func-returns-value]

        assert chords.chord_member_done(queue, chord, 0, 3, TTL, build(0)) is False
        assert chords.chord_member_done(queue, chord, 2, 3, TTL, build(2)) is False
        assert chords.chord_member_done(queue, chord, 2, 3, TTL, build(2)) is False
        assert built == [] and broker.reserve([queue], 10, 0) == []
        assert chords.chord_member_done(queue, chord, 1, 3, TTL, build(1)) is True
        assert chords.chord_member_done(queue, chord, 1, 3, TTL, build(1)) is False
        assert built == [1]
        assert self.reserve_all(broker, queue) == [callback.id]

    def test_a_report_stores_its_results_before_the_callback_goes_in(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, other, chord = new_queue(), new_queue(), new_chord()
        mine = Result(uuid.uuid4().hex, b"mine", queue)
        theirs = Result(uuid.uuid4().hex, b"theirs", other)  # beside another queue
        callback = new_message(queue)
        assert chords.chord_member_done(queue, chord, 0, 1, TTL, [callback],
                                        results=[mine, theirs]) is True
        backend = broker.result_backend()
        for result in (mine, theirs):
            got = backend.get(result.job_id, 0, result.queue)
            assert got is not None and got.body == result.body
        assert self.reserve_all(broker, queue) == [callback.id]

    def test_several_reports_in_one_call_each_as_alone(
        self, broker: Broker, chords: ChordRecords
    ) -> None:
        queue, one, two = new_queue(), new_chord(), new_chord()
        first, second = new_message(queue), new_message(queue)
        built: list[str] = []

        def build(message: Message) -> Callable[[], list[Message]]:
            return lambda: built.append(message.id) or [message]  # type: ignore[func-returns-value]

        result = Result(uuid.uuid4().hex, b"member", queue)
        assert chords.chord_members_done([
            ChordReport(queue, one, 0, 2, build(first), [result]),
            ChordReport(queue, one, 0, 2, build(first)),  # the same member again
            ChordReport(queue, two, 0, 1, build(second)),  # completes chord two
            ChordReport(queue, one, 1, 2, build(first)),  # completes chord one
        ], TTL) == [False, False, True, True]
        assert sorted(built) == sorted([first.id, second.id])
        assert sorted(self.reserve_all(broker, queue)) == sorted([first.id, second.id])
        got = broker.result_backend().get(result.job_id, 0, queue)
        assert got is not None and got.body == b"member"
