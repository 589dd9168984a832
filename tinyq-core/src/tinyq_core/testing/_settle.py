"""Required tier: ``settle_and_reserve``, the worker's report and next fetch in one call."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from .._interfaces import Broker, BrokerAdmin, ResultBackend
from .._types import Delivery, Result, SettleRequest
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

    def test_a_job_that_ran_twice_keeps_its_success(
        self, broker: Broker, results: ResultBackend
    ) -> None:
        """A lease lost while the job ran (its worker stalled): the job runs again. The first
        run's late success is stored (its ack finds the lease gone and touches nothing), and a
        later failure of the second delivery (a crash loop, say) never replaces it: the job
        succeeded, so it is no dead letter either."""
        queue = new_queue()
        message = new_message(queue)
        broker.enqueue([message])
        [first] = self.reserve_exactly(broker, queue, 1)
        self.expire_leases(broker)
        assert broker.recover([queue]) == 1
        [second] = self.reserve_exactly(broker, queue, 1)
        assert broker.renew([first]) in (None, [first])  # a broker may say the lease is lost
        success = Result(message.id, b"success", queue)
        lost: list[Sequence[Delivery]] = []
        broker.settle_and_reserve(SettleRequest(results=[success], result_ttl=60, acks=[first],
                                                on_lost=lost.append))
        assert lost in ([], [[first]])
        failure = Result(message.id, b"failure", queue, ok=False)
        broker.dead_letter(second, "crash loop", result=failure, result_ttl=60)
        assert results.get(message.id, queue=queue) == success
        results.store([failure], 60)  # nor through the backend itself
        assert results.get(message.id, queue=queue) == success
        if isinstance(broker, BrokerAdmin):
            assert broker.dead_letters(queue) == []
        self.expire_leases(broker)
        assert broker.recover([queue]) == 0  # settled: nothing leased, nothing to run
        assert broker.reserve([queue], 1, 0) == []

    def test_a_later_success_replaces_a_failure(self, results: ResultBackend) -> None:
        queue = new_queue()
        failure = Result("job-1", b"failure", queue, ok=False)
        success = Result("job-1", b"success", queue)
        results.store([failure], 60)
        assert results.get("job-1", queue=queue) == failure
        results.store([success], 60)
        assert results.get("job-1", queue=queue) == success
