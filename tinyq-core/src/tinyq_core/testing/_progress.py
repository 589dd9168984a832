"""Job progress in the result backend (optional: skipped where ``store_progress`` raises
NotImplementedError)."""

from __future__ import annotations

import uuid

import pytest

from .._interfaces import Broker, ResultBackend
from ._support import ContractBase, new_queue


def _stores_progress(results: ResultBackend) -> bool:
    try:
        results.progress(uuid.uuid4().hex, "default")
    except NotImplementedError:
        return False
    return True


class ProgressContract(ContractBase):
    def test_progress_round_trip_and_replace(self, results: ResultBackend) -> None:
        if not _stores_progress(results):
            pytest.skip(f"{type(results).__name__} keeps no progress (optional)")
        queue, job_id = new_queue(), uuid.uuid4().hex
        assert results.progress(job_id, queue) is None
        results.store_progress(job_id, queue, b"\x00 1 \xff", ttl=60)
        assert results.progress(job_id, queue) == b"\x00 1 \xff"
        results.store_progress(job_id, queue, b"2", ttl=60)
        assert results.progress(job_id, queue) == b"2"  # the latest replaces the one before
        assert results.progress(job_id, "default") is None  # per queue
        assert results.get(job_id, 0, queue) is None  # not a result

    def test_progress_expires_after_its_ttl(
        self, broker: Broker, results: ResultBackend
    ) -> None:
        if not _stores_progress(results):
            pytest.skip(f"{type(results).__name__} keeps no progress (optional)")
        job_id = uuid.uuid4().hex
        ttl = broker.visibility_timeout  # short on every broker the suite runs against
        results.store_progress(job_id, "default", b"short-lived", ttl=ttl)
        assert results.progress(job_id, "default") == b"short-lived"
        self.advance(broker, ttl * 1.25)
        assert results.progress(job_id, "default") is None
