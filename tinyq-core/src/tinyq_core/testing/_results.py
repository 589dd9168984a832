"""The result backend beside the broker (``broker.result_backend()``); skipped without one."""

from __future__ import annotations

import time
import uuid

from .._interfaces import Broker, ResultBackend
from .._types import Message, Result
from ._support import (
    AT_ONCE,
    GRACE,
    LONG_WAIT,
    SHORT_WAIT,
    WOKE_WITHIN,
    ContractBase,
    later,
    new_message,
    new_queue,
)


class ResultsContract(ContractBase):
    def test_results_round_trip(self, results: ResultBackend) -> None:
        queue = new_queue()
        stored = [Result(uuid.uuid4().hex, b"\x00 result \xff"), Result(uuid.uuid4().hex, b"")]
        stored.append(Result(uuid.uuid4().hex, b"in a queue", queue))
        results.store(stored, ttl=60)
        assert [results.get(r.job_id, queue=r.queue) for r in stored] == stored

    def test_missing_result_is_none_at_once(self, results: ResultBackend) -> None:
        started = time.monotonic()
        assert results.get(uuid.uuid4().hex, timeout=0) is None
        assert time.monotonic() - started < AT_ONCE

    def test_result_expires_after_its_ttl(self, broker: Broker, results: ResultBackend) -> None:
        result = Result(uuid.uuid4().hex, b"short-lived")
        ttl = broker.visibility_timeout  # short on every broker the suite runs against
        results.store([result], ttl=ttl)
        assert results.get(result.job_id) == result
        self.advance(broker, ttl * 1.25)
        assert results.get(result.job_id) is None

    def test_blocking_get_wakes_on_store(self, results: ResultBackend) -> None:
        result = Result(uuid.uuid4().hex, b"late")
        started = time.monotonic()
        with later(lambda: results.store([result], ttl=60)):
            got = results.get(result.job_id, timeout=LONG_WAIT)
        assert got == result
        assert time.monotonic() - started < WOKE_WITHIN

    def test_stored_says_which_jobs_have_a_result(self, results: ResultBackend) -> None:
        queue = new_queue()
        done, missing = Result(uuid.uuid4().hex, b"r", queue), uuid.uuid4().hex
        results.store([done], ttl=60)
        asked = [(queue, done.job_id), (queue, missing), ("default", done.job_id)]
        assert results.stored(asked) == {(queue, done.job_id)}

    def test_get_many_reads_results_in_order(self, results: ResultBackend) -> None:
        queue = new_queue()
        first, second = Result(uuid.uuid4().hex, b"1", queue), Result(uuid.uuid4().hex, b"2")
        results.store([first, second], ttl=60)
        got = results.get_many([("default", second.job_id), (queue, uuid.uuid4().hex),
                                (queue, first.job_id)])
        assert [None if r is None else (r.job_id, r.body, r.queue) for r in got] == [
            (second.job_id, b"2", "default"), None, (first.job_id, b"1", queue)]

    def test_enqueue_of_a_job_whose_result_is_stored_adds_nothing(
        self, broker: Broker, results: ResultBackend
    ) -> None:
        # The job ran and its result is still there: enqueued again (now or delayed), it
        # would run twice (a replay); its handle is the existing job's.
        queue = new_queue()
        ran, ran_later, fresh = (new_message(queue) for _ in range(3))
        results.store([Result(ran.id, b"r", queue), Result(ran_later.id, b"r", queue)], 60)
        due = self.now(broker) + 0.2
        broker.enqueue([ran, Message(ran_later.id, queue, ran_later.body, due), fresh])
        assert [d.id for d in broker.reserve([queue], 10, GRACE)] == [fresh.id]
        self.advance(broker, 0.3)
        broker.move_due([queue])
        assert broker.reserve([queue], 10, 0) == []

    def test_blocking_get_times_out(self, results: ResultBackend) -> None:
        started = time.monotonic()
        assert results.get(uuid.uuid4().hex, timeout=SHORT_WAIT) is None
        elapsed = time.monotonic() - started
        assert SHORT_WAIT * 0.8 <= elapsed < SHORT_WAIT + WOKE_WITHIN
