"""Required tier: ``settle_and_reserve``, the worker's report and next fetch in one call."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from .._interfaces import Broker, ResultBackend
from .._types import Result, SettleRequest
from ._support import AT_ONCE, GRACE, LONG_WAIT, ContractBase, new_message, new_queue

# The calls the default settle_and_reserve makes, in order; each in turn is made to fail.
SETTLE_STEPS = ("result store", "ack", "reserve")


class InjectedFault(Exception):
    """Raised by a broker method the test broke on purpose."""


def _fail(*args: object, **kwargs: object) -> None:
    raise InjectedFault("failed on purpose by the contract suite")


class _FailingStore(ResultBackend):
    def store(self, results: Sequence[Result], ttl: float) -> None:
        _fail()

    def get(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        return None


def _break(patch: pytest.MonkeyPatch, broker: Broker, step: str) -> None:
    """Make one step of the default ``settle_and_reserve`` fail, on this instance only. A
    broker whose own settle_and_reserve does not call these methods runs undisturbed."""
    if step == "result store":
        patch.setattr(broker, "result_backend", _FailingStore)
    else:
        patch.setattr(broker, step, _fail)


class SettleContract(ContractBase):
    def test_settle_and_reserve_acks_then_reserves(self, broker: Broker) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue), new_message(queue)])
        done = self.reserve_exactly(broker, queue, 2)
        waiting = new_message(queue)
        broker.enqueue([waiting])

        got = broker.settle_and_reserve(
            SettleRequest(acks=done, queues=[queue], count=5, timeout=GRACE)
        )
        assert [(d.id, d.attempts) for d in got] == [(waiting.id, 1)]
        # Enqueued again, the acked ones are new jobs; the reserved one is leased, so skipped.
        broker.enqueue([d.message for d in done] + [waiting])
        again = broker.reserve([queue], 10, GRACE)
        assert sorted((d.id, d.attempts) for d in again) == sorted((d.id, 1) for d in done)

    def test_settle_and_reserve_stores_results_in_its_backend(
        self, broker: Broker, results: ResultBackend
    ) -> None:
        queue = new_queue()
        broker.enqueue([new_message(queue), new_message(queue)])
        done = self.reserve_exactly(broker, queue, 2)
        stored = [Result(d.id, f"result of {d.id}".encode(), queue) for d in done]
        assert broker.settle_and_reserve(SettleRequest(
            results=stored, result_ttl=60, acks=done, queues=[queue], count=1, timeout=0
        )) == []
        assert [results.get(r.job_id, queue=queue) for r in stored] == stored
        # Acked, and their results are stored: enqueued again they are replays, not added.
        fresh = new_message(queue)
        broker.enqueue([*(d.message for d in done), fresh])
        assert [d.id for d in broker.reserve([queue], 10, GRACE)] == [fresh.id]

    def test_settle_with_count_0_acks_and_reserves_nothing(self, broker: Broker) -> None:
        queue = new_queue()
        first, waiting = new_message(queue), new_message(queue)
        broker.enqueue([first])
        done = self.reserve_exactly(broker, queue, 1)
        broker.enqueue([waiting])
        started = time.monotonic()
        assert broker.settle_and_reserve(SettleRequest()) == []
        request = SettleRequest(acks=done, queues=[queue], count=0, timeout=LONG_WAIT)
        assert broker.settle_and_reserve(request) == []
        assert time.monotonic() - started < AT_ONCE  # no reserve, so no wait either
        broker.enqueue([first])  # acked, so this is a new job; were it leased, nothing
        got = broker.reserve([queue], 10, GRACE)
        assert sorted((d.id, d.attempts) for d in got) == sorted([(first.id, 1), (waiting.id, 1)])

    def test_a_settle_failing_part_way_loses_no_result(
        self, broker: Broker, results: ResultBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Results are stored before the acks: whichever step fails, each job ends up either
        still leased (it runs again) or acknowledged with its result, never acknowledged
        without it. A settle that returns has done all of it."""
        queue = new_queue()
        broker.enqueue([new_message(queue) for _ in SETTLE_STEPS])
        jobs = self.reserve_exactly(broker, queue, len(SETTLE_STEPS))
        outcomes: dict[str, tuple[str, bool, Result]] = {}
        for step, job in zip(SETTLE_STEPS, jobs, strict=True):
            result = Result(job.id, f"result of {job.id}".encode(), queue)
            request = SettleRequest(results=[result], result_ttl=60, acks=[job],
                                    queues=[queue], count=1, timeout=0)
            with monkeypatch.context() as patch:
                _break(patch, broker, step)
                try:
                    broker.settle_and_reserve(request)
                    failed = False
                except Exception:  # the injected fault, or the broker's wrapping of it
                    failed = True
            outcomes[job.id] = (step, failed, result)

        self.expire_leases(broker)
        recovered = broker.recover([queue])
        again = broker.reserve([queue], 10, GRACE) if recovered else []
        leased = {d.id for d in again}
        assert len(leased) == recovered
        for job_id, (step, failed, result) in outcomes.items():
            stored = results.get(job_id, queue=queue)
            if job_id not in leased:
                assert stored == result, f"{step} failing: the job was acked without its result"
            if not failed:
                assert job_id not in leased, f"{step}: settle returned, yet the job is leased"
                assert stored == result, f"{step}: settle returned, yet no result is stored"
