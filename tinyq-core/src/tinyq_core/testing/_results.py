"""The result backend beside the broker (``broker.result_backend()``); skipped without one."""

from __future__ import annotations

import time
import uuid

from .._interfaces import Broker, ResultBackend
from .._types import Result
from ._support import AT_ONCE, LONG_WAIT, SHORT_WAIT, WOKE_WITHIN, ContractBase, later, new_queue


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

    def test_blocking_get_times_out(self, results: ResultBackend) -> None:
        started = time.monotonic()
        assert results.get(uuid.uuid4().hex, timeout=SHORT_WAIT) is None
        elapsed = time.monotonic() - started
        assert SHORT_WAIT * 0.8 <= elapsed < SHORT_WAIT + WOKE_WITHIN
