"""The worker's parts on their own, without running a worker: held jobs and capacity, the
outbox and its sender, the shutdown ladder, the thread helpers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tinyq_core import Application
from tinyq_core._worker.health import BrokerHealth
from tinyq_core._worker.held import HOARD_WAIT, HeldJobs, Work
from tinyq_core._worker.ladder import ShutdownLadder, Stage
from tinyq_core._worker.leases import LostLeases
from tinyq_core._worker.outbox import Outbox, Sender
from tinyq_core._worker.policy import AckJob, DeadLetterJob, RetryJob, Settlement
from tinyq_core._worker.threads import ThreadGroup, raise_in_thread
from tinyq_core.plugin import Delivery, Job, Message, Result, SettleRequest

APP = Application("memory://")


@APP.task(name="t.f")
def f() -> None:
    return None


@APP.task(name="t.slow", timeout=5)
def slow() -> None:
    return None


def work(n: int = 1, task: Any = f) -> Work:
    job = Job(f"j{n}", task.name)
    return Work(Delivery(Message(job.id, "default", b""), 1, f"r{n}"), job, task)


def held_jobs(concurrency: int = 4, prefetch: int | None = 2, inline: bool = False) -> HeldJobs:
    return HeldJobs(threading.Condition(), concurrency, prefetch, inline)


# -- held jobs -----------------------------------------------------------------------------


def test_room_is_slots_plus_prefetch_minus_held() -> None:
    held = held_jobs(concurrency=4, prefetch=2)
    assert held.room() == (6, 2)  # linger goal: the prefetch, smaller than the slots
    for n in range(5):
        held.add(work(n))
    assert held.room() == (1, 2)
    assert held_jobs(inline=True).room()[0] == 1
    assert held_jobs(concurrency=8, prefetch=None).room()[0] == 8 + 2  # adaptive: 8 // 4


def test_a_job_is_decided_once() -> None:
    held = held_jobs()
    w = work()
    held.add(w)
    assert held.begin(w) and w.thread_id == threading.get_ident() and w.deadline is None
    assert held.finish(w)  # the job's thread claims it
    assert not held.take_back(w)  # a stop cannot give it back any more
    held.release(w)
    assert held.count() == 0

    given_back = work(2)
    held.add(given_back)
    assert held.take_back(given_back) and held.count() == 0
    assert not held.begin(given_back)  # its thread then does not start it


def test_unstarted_jobs_beyond_a_shrunken_capacity_are_taken_for_a_give_back() -> None:
    """After short jobs the adaptive prefetch is deep; once the slots run long jobs it is
    none, and the unstarted jobs beyond the slots that waited HOARD_WAIT are given back, the
    newest first (another worker can start them now)."""
    held = held_jobs(concurrency=2, prefetch=None)
    held.job_seconds = 0.001  # short jobs so far: a prefetch of 2 * concurrency
    works = [work(n) for n in range(6)]
    for w in works:
        held.add(w)
    assert held.room()[0] == 0
    now = time.monotonic()
    assert held.take_hoarded(now + HOARD_WAIT) == []  # no slot stuck: all are wanted
    for w in works[:2]:
        assert held.begin(w)
        w.started = now - 1.0  # running far longer than the average: stuck
    assert held.take_hoarded(now) == []  # not waited long enough yet
    given_back = held.take_hoarded(now + HOARD_WAIT)
    assert given_back == works[:1:-1]  # all four unstarted, the newest first
    assert held.count() == 2 and not held.unstarted()
    assert not held.begin(works[2])  # its executor thread skips it
    assert held_jobs(concurrency=2, prefetch=4).take_hoarded(now + 9) == []  # a fixed prefetch


def test_a_first_long_job_gives_back_the_initial_prefetch() -> None:
    """Before any job finished the prefetch is concurrency // 4, at least 1; a job running
    far longer than PREFETCH_WAIT meanwhile holds its slot, and the prefetched job goes back."""
    held = held_jobs(concurrency=1, prefetch=None)
    running, prefetched = work(1), work(2)
    held.add(running)
    held.add(prefetched)
    assert held.begin(running)
    now = time.monotonic()
    assert held.take_hoarded(now + HOARD_WAIT) == []  # just started: not stuck yet
    running.started = now - 1.0
    assert held.take_hoarded(now + HOARD_WAIT) == [prefetched]


def test_expire_claims_jobs_past_their_deadline() -> None:
    held = held_jobs()
    late, later = work(1, slow), work(2, slow)
    for w in (late, later):
        held.add(w)
        assert held.begin(w)
    later.deadline = late.deadline + 10  # type: ignore[operator]
    late.in_user_code = later.in_user_code = False  # no thread to interrupt here
    expired, next_deadline = held.expire(late.deadline + 1)  # type: ignore[operator]
    assert expired == [late] and next_deadline == later.deadline
    assert not held.finish(late)  # its thread returns to find it decided
    leased, running, zombies = held.snapshot()
    assert {d.receipt for d in leased} == {"r1", "r2"} and running == [later] and not zombies


def test_the_running_average_feeds_the_adaptive_prefetch() -> None:
    held = held_jobs(concurrency=8, prefetch=None)
    w = work()
    held.add(w)
    held.begin(w)
    held.leave_user_code(w, 0.001)
    assert held.job_seconds == 0.001
    assert held.room()[0] == 8 + 16 - 1  # short jobs: 2 * concurrency, one held


@APP.task(name="t.nap")
async def nap() -> None:
    return None


def test_the_event_loops_slots_have_an_adaptive_prefetch_of_their_own() -> None:
    held = held_jobs(concurrency=4, prefetch=None)
    held.async_slots = 100
    assert held.room()[0] == 4 + 1 + 100 + 25  # before any job ran: a quarter of each
    w = work(1, nap)
    held.add(w)
    held.begin(w)
    held.leave_user_code(w, 0.05)  # one 50 ms async job: a slot frees every 0.5 ms
    assert held.async_job_seconds == 0.05 and held.job_seconds is None
    # As many as free within PREFETCH_WAIT (one job held):
    assert held.room()[0] == 4 + 1 + 100 + 100 - 1
    held.leave_user_code(w, 60.0)  # the average becomes 6 s: a slot frees every 60 ms
    assert held.room()[0] == 4 + 1 + 100 + 0 - 1  # long async jobs: no prefetch
    fixed = held_jobs(concurrency=4, prefetch=0)
    fixed.async_slots = 100
    assert fixed.room()[0] == 4 + 100  # a prefetch asked for applies to both


# -- outbox ----------------------------------------------------------------------------------


class FakeSend:
    """Records batches; fails while ``down``."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Settlement], int, float]] = []
        self.down = False

    def __call__(self, batch: list[Settlement], count: int, timeout: float) -> list[Delivery]:
        if self.down:
            raise ConnectionError("down")
        self.batches.append((list(batch), count, timeout))
        return []


def outbox_with(send: FakeSend) -> tuple[Outbox, HeldJobs, BrokerHealth]:
    held, health = held_jobs(), BrokerHealth()
    return Outbox(held._cond, held, send, health), held, health  # type: ignore[arg-type]


def test_a_job_sends_for_itself_unless_the_fetcher_will() -> None:
    send = FakeSend()
    outbox, held, _ = outbox_with(send)
    w = work()
    held.add(w)
    outbox.put(AckJob(w.delivery), w)  # no fetcher yet: sent at once
    assert [b[0] for b in send.batches] == [[AckJob(w.delivery)]]
    assert held.count() == 0 and outbox.processed == 1

    outbox.send_and_reserve(4, 0)  # a non-blocking read: the fetcher sends next time
    outbox.put(AckJob(work(2).delivery))
    assert outbox.pending() == 1 and len(send.batches) == 2
    outbox.send_and_reserve(4, 0)
    assert outbox.pending() == 0 and len(send.batches[2][0]) == 1
    assert outbox.processed == 1  # a settlement without a held job (a rejection) is no run

    outbox.fetcher_leaving()
    outbox.put(AckJob(work(3).delivery))
    assert outbox.pending() == 0 and len(send.batches) == 4


def test_a_batch_being_sent_counts_as_unsent_until_it_landed() -> None:
    """``deliveries()`` (leases to renew; cancel requests to keep) includes a batch while its
    send is under way: it may still fail and be kept."""
    seen: list[list[str]] = []
    send = FakeSend()
    outbox, _, _ = outbox_with(send)

    def sending(batch: list[Settlement], count: int, timeout: float) -> list[Delivery]:
        seen.append([d.id for d in outbox.deliveries()])
        return send(batch, count, timeout)

    outbox._send = sending  # type: ignore[assignment]
    outbox.send_and_reserve(1, 0)
    outbox.put(AckJob(work(1).delivery))
    outbox.send_and_reserve(1, 0)
    outbox.fetcher_leaving()
    outbox.put(AckJob(work(2).delivery))  # sent by the job's own flush
    assert seen == [[], ["j1"], ["j2"]]
    assert outbox.deliveries() == []


def test_a_failed_send_keeps_the_batch_in_order() -> None:
    send = FakeSend()
    outbox, _, health = outbox_with(send)
    outbox.send_and_reserve(1, 0)
    first, second = AckJob(work(1).delivery), AckJob(work(2).delivery)
    outbox.put(first)
    send.down = True
    with pytest.raises(ConnectionError):
        outbox.send_and_reserve(1, 0)
    outbox.put(second)
    assert [d.id for d in outbox.deliveries()] == ["j1", "j2"]  # still renewed
    outbox.fetcher_leaving()
    outbox.flush_quietly()
    assert health.down and outbox.pending() == 2
    send.down = False
    outbox.flush_with_retries()
    assert [s.delivery.id for s in send.batches[-1][0]] == ["j1", "j2"]


class RecordingBroker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def nack(self, delivery: Delivery, delay: float, body: bytes) -> None:
        self.calls.append(("nack", (delivery.id, delay, body)))

    def dead_letter(
        self, delivery: Delivery, reason: str, error: str, *, result: Result | None = None,
        result_ttl: float = 0.0, verified: bool = True,
    ) -> None:
        stored = None if result is None else result.job_id
        self.calls.append(("dead_letter", (delivery.id, reason, error, stored)))

    def settle_and_reserve(self, request: SettleRequest) -> list[Delivery]:
        self.calls.append(("settle", request))
        return []

    def store(self, results: list[Result], ttl: float) -> None:
        self.calls.append(("store", [r.job_id for r in results]))


@pytest.mark.parametrize("own_results", [True, False])
def test_the_sender_stores_results_before_acks(own_results: bool) -> None:
    broker = RecordingBroker()
    send = Sender(broker, broker, own_results, 60, ["q"],  # type: ignore[arg-type]
                  LostLeases(60))
    ok, retry, dead = work(1), work(2), work(3)
    result, failure = Result("j1", b"ok"), Result("j3", b"failed")
    send([AckJob(ok.delivery, result), RetryJob(retry.delivery, b"again", 2.0),
          DeadLetterJob(dead.delivery, failure, "failed", "E: x")], 5, 0.5)
    names = [name for name, _ in broker.calls]
    if own_results:  # the failure rides the dead letter: seen together
        assert names == ["nack", "dead_letter", "settle"]
        assert broker.calls[1][1] == ("j3", "failed", "E: x", "j3")
    else:  # another backend: the failure first, then the dead letter, then the successes
        assert names == ["store", "nack", "dead_letter", "store", "settle"]
        assert broker.calls[0][1] == ["j3"] and broker.calls[2][1][3] is None
    request = broker.calls[-1][1]
    assert request.acks == [ok.delivery] and (request.count, request.timeout) == (5, 0.5)
    assert list(request.results) == ([result] if own_results else [])
    broker.calls.clear()
    assert send([], 0, 0) == [] and broker.calls == []  # nothing to say, nothing to read


# -- the shutdown ladder -----------------------------------------------------------------------


def test_the_ladder_only_climbs() -> None:
    ladder = ShutdownLadder(threading.Condition())
    assert ladder.running and not ladder.wait_for_stop(0.01)
    assert ladder.next_step() is Stage.WARM and not ladder.cold
    ladder.climb(Stage.RUNNING)
    assert ladder.stage is Stage.WARM
    assert ladder.next_step() is Stage.COLD and ladder.next_step() is Stage.COLD
    assert ladder.wait_for_stop(None) and not ladder.done.is_set()
    ladder.climb(Stage.DONE)
    assert ladder.done.is_set() and ladder.cold


def test_a_stop_wakes_a_waiter_at_once() -> None:
    ladder = ShutdownLadder(threading.Condition())
    timer = threading.Timer(0.1, ladder.climb, (Stage.COLD,))
    timer.start()
    started = time.monotonic()
    assert ladder.wait_for_stop(10)
    assert time.monotonic() - started < 5
    timer.join()


# -- threads ---------------------------------------------------------------------------------


def test_raise_in_thread_interrupts_python_code_and_can_be_withdrawn() -> None:
    caught: list[str] = []
    ready = threading.Event()

    def spin() -> None:
        ready.set()
        try:
            while True:
                pass
        except TimeoutError:
            caught.append("interrupted")

    thread = threading.Thread(target=spin)
    thread.start()
    assert ready.wait(5)
    assert raise_in_thread(thread.ident, TimeoutError)  # type: ignore[arg-type]
    thread.join(5)
    assert not thread.is_alive() and caught == ["interrupted"]
    assert not raise_in_thread(thread.ident, None)  # type: ignore[arg-type]  # gone


def test_a_thread_group_joins_its_threads() -> None:
    stop = threading.Event()
    with ThreadGroup() as group:
        group.start(lambda: stop.wait(10), "helper-a")
        group.start(lambda: stop.wait(10), "helper-b")
        assert group.alive() == ["helper-a", "helper-b"]
        stop.set()
    assert group.alive() == []
