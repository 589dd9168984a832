"""The worker's policies on the memory broker: retries, dead letters, crash loops, timeouts,
bad messages, leases, batching, prefetch and broker outages."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Sequence

import pytest

from tinyq_core import Application, Delivery, JobFailed, Message, Retry
from tinyq_core._worker.held import adaptive_prefetch
from tinyq_memory import FakeClock, MemoryBroker, drain

from support.waiting import wait_until
from support.worker_thread import running_worker


def test_retries_with_exponential_backoff_then_dead_letter(
    tinyq_app: Application, tinyq_broker: MemoryBroker, tinyq_clock: FakeClock
) -> None:
    attempts = []

    @tinyq_app.task(max_retries=3, retry_backoff=10.0, retry_backoff_max=25.0)
    def flaky() -> None:
        attempts.append(tinyq_clock.time())
        raise ValueError("boom")

    h = flaky.delay()
    drain(tinyq_app)
    assert len(attempts) == 4
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    assert 8 <= waits[0] <= 12  # about base
    assert 16 <= waits[1] <= 24  # about base * 2
    assert waits[2] == pytest.approx(25.0, abs=0.01)  # capped
    with pytest.raises(JobFailed, match="ValueError: boom"):
        h.result(0)
    dead = tinyq_broker.dead_letters("default")
    assert len(dead) == 1
    assert dead[0].message.id == h.id
    assert "4 attempt" in dead[0].reason
    assert dead[0].error == "ValueError: boom"


def test_retry_on_limits_which_errors_retry(tinyq_app: Application) -> None:
    calls = []

    @tinyq_app.task(max_retries=5, retry_backoff=0.0, retry_on=(ConnectionError,))
    def f(kind: str) -> None:
        calls.append(kind)
        raise (ConnectionError if kind == "net" else KeyError)(kind)

    f.delay("net")
    f.delay("key")
    drain(tinyq_app)
    assert calls.count("net") == 6
    assert calls.count("key") == 1


def test_raise_retry_with_delay(tinyq_app: Application, tinyq_clock: FakeClock) -> None:
    seen = []

    @tinyq_app.task(max_retries=2)
    def f() -> str:
        seen.append(tinyq_clock.time())
        if len(seen) < 3:
            raise Retry(delay=100)
        return "done"

    h = f.delay()
    drain(tinyq_app, advance_clock=False)
    assert len(seen) == 1 and h.status() == "scheduled"
    tinyq_clock.advance(99)
    drain(tinyq_app, advance_clock=False)
    assert len(seen) == 1
    drain(tinyq_app)
    assert h.result(0) == "done"
    assert seen[1] - seen[0] == pytest.approx(100, abs=0.01)


def test_crash_loop_is_dead_lettered(
    tinyq_app: Application, tinyq_broker: MemoryBroker, tinyq_clock: FakeClock
) -> None:
    """A job whose worker dies (never reports back) is redelivered after its lease; more than
    max_retries + 1 such deliveries and it is dead-lettered instead of delivered again."""

    @tinyq_app.task(max_retries=1)
    def doomed() -> None:
        return None

    h = doomed.delay()
    for attempt in range(1, 4):  # three deliveries that "kill the worker"
        [d] = tinyq_broker.reserve(["default"], 1, 0)
        assert d.attempts == attempt
        tinyq_clock.advance(tinyq_broker.visibility_timeout + 1)
        assert tinyq_broker.recover(["default"]) == 1
    drain(tinyq_app)
    assert h.status() == "failed"
    [dead] = tinyq_broker.dead_letters("default")
    assert "crash loop" in dead.reason and "4 times" in dead.reason
    with pytest.raises(JobFailed, match="crash loop"):
        h.result(0)


def test_a_job_killed_once_runs_again(
    tinyq_app: Application, tinyq_broker: MemoryBroker, tinyq_clock: FakeClock
) -> None:
    @tinyq_app.task()
    def f() -> int:
        return 1

    h = f.delay()
    tinyq_broker.reserve(["default"], 1, 0)  # its worker dies holding it
    tinyq_clock.advance(tinyq_broker.visibility_timeout + 1)
    tinyq_broker.recover(["default"])
    drain(tinyq_app)
    assert h.result(0) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00\xff garbage", "undecodable"),
        (b'{"id": "x", "args": []}', "missing field 'task'"),
        (b'{"id": "x", "task": 5}', "field 'task' has type int"),
        (b'{"id": "x", "task": "t", "args": "no"}', "field 'args' has type str"),
        (b'{"id": "x", "task": "t", "at": "today"}', "field 'at' has type str"),
        (b"[1, 2]", "expected an object"),
        (b'{"id": "x", "task": "no.such.task"}', "unknown task 'no.such.task'"),
    ],
)
def test_bad_messages_are_dead_lettered_and_the_worker_goes_on(
    tinyq_app: Application, tinyq_broker: MemoryBroker, body: bytes, reason: str
) -> None:
    @tinyq_app.task()
    def ok() -> str:
        return "fine"

    tinyq_broker.enqueue([Message("bad-1", "default", body)])
    good = ok.delay()
    drain(tinyq_app)
    assert good.result(0) == "fine"
    [dead] = tinyq_broker.dead_letters("default")
    assert dead.message.id == "bad-1"
    assert reason in dead.reason
    with pytest.raises(JobFailed, match="dead-lettered"):
        tinyq_app.job("bad-1").result(0)


def test_timeout_fails_a_long_job_and_retries_it(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker)
    runs = []

    @app.task(timeout=0.2, max_retries=1, retry_backoff=0)
    def spin() -> None:
        runs.append(1)
        end = time.monotonic() + 5
        while time.monotonic() < end:  # pure Python: interruptible
            pass

    h = spin.delay()
    started = time.monotonic()
    app.worker(concurrency=2).run(burst=True)
    assert time.monotonic() - started < 3
    assert len(runs) == 2
    with pytest.raises(JobFailed, match="JobTimeout"):
        h.result(0)


def test_long_job_keeps_its_lease(tmp_path: object) -> None:
    broker = MemoryBroker(visibility_timeout=0.3)
    app = Application(broker)
    runs = []

    @app.task()
    def slow() -> str:
        runs.append(1)
        time.sleep(1.0)
        return "ok"

    h = slow.delay()
    stolen: list[Delivery] = []
    with running_worker(app, burst=True, concurrency=2) as worker:
        wait_until(lambda: runs, message="the job to start")
        # Another consumer keeps recovering and reserving while the job runs: it must get
        # nothing.
        while not worker.processed:
            broker.recover(["default"])
            stolen += broker.reserve(["default"], 10, 0.05)
    assert stolen == []
    assert runs == [1]
    assert h.result(0) == "ok"


def test_prefetch_is_bounded(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker)
    gate = threading.Event()

    @app.task()
    def wait() -> None:
        gate.wait(5)

    wait.map([()] * 50)
    with running_worker(app, burst=True, concurrency=4, prefetch=2):
        time.sleep(0.3)
        assert tinyq_broker.size("default") == 50 - 6
        gate.set()
    assert tinyq_broker.size("default") == 0


def test_default_prefetch_follows_job_duration() -> None:
    assert adaptive_prefetch(8, None) == 2  # nothing measured yet: concurrency // 4
    assert adaptive_prefetch(8, 0.001) == 16  # short jobs: 2 * concurrency
    assert adaptive_prefetch(8, 0.1) == 4  # what 8 slots free in about PREFETCH_WAIT
    assert adaptive_prefetch(8, 60.0) == 0  # long jobs: none (no job waits for a slot)
    assert adaptive_prefetch(1, None) == 1
    assert adaptive_prefetch(1, None, stuck=1) == 0  # its one slot runs a long first job
    assert adaptive_prefetch(8, None, stuck=4) == 1
    assert adaptive_prefetch(8, 0.01, stuck=6) == 10  # 2 slots still free up every 10 ms
    assert adaptive_prefetch(8, 0.001, stuck=8) == 0  # every slot held by a long job


def test_default_prefetch_follows_job_duration_on_a_worker(tinyq_broker: MemoryBroker) -> None:
    """After quick jobs, a worker with the default prefetch holds 2 * concurrency jobs beyond
    its running ones; after slow ones, none."""
    app = Application(tinyq_broker)
    gate = threading.Event()
    done = {kind: threading.Semaphore(0) for kind in ("quick", "slow", "wait")}

    @app.task()
    def job(kind: str) -> None:
        if kind == "slow":
            time.sleep(0.3)
        elif kind == "wait":
            gate.wait(10)
        done[kind].release()

    def finished(kind: str, count: int) -> None:
        for _ in range(count):
            assert done[kind].acquire(timeout=10)

    def held_after_filling(enqueued: int) -> int:
        time.sleep(0.3)  # let the fetcher fill up
        return enqueued - tinyq_broker.size("default")

    with running_worker(app, concurrency=2), contextlib.ExitStack() as leaving:
        leaving.callback(gate.set)  # first, so that the jobs at the gate end before the stop
        job.map([("quick",)] * 30)
        finished("quick", 30)
        job.map([("wait",)] * 20)
        assert held_after_filling(20) == 2 + 4  # 2 running, 2 * concurrency prefetched
        gate.set()
        finished("wait", 20)
        gate.clear()
        job.map([("slow",)] * 6)  # 0.3 s each: 2 slots free fewer than one job per 50 ms
        finished("slow", 6)
        job.map([("wait",)] * 20)
        assert held_after_filling(20) == 2  # 2 running, none prefetched


def test_long_jobs_after_short_ones_shrink_the_prefetch_at_once(
    tinyq_broker: MemoryBroker,
) -> None:
    """Jobs running far longer than the average so far count as stuck: a worker whose slots
    all run such jobs prefetches none, not the deep prefetch the short jobs earned, and gives
    back the unstarted jobs a read sized before took."""
    app = Application(tinyq_broker)
    gate = threading.Event()
    quick_done = threading.Semaphore(0)

    @app.task()
    def job(kind: str) -> None:
        if kind == "quick":
            quick_done.release()
        else:
            gate.wait(10)

    asked: list[int] = []  # how many jobs each read of the worker asked for
    reserve = tinyq_broker.reserve

    def recording_reserve(queues, count, timeout):  # type: ignore[no-untyped-def]
        asked.append(count)
        return reserve(queues, count, timeout)

    tinyq_broker.reserve = recording_reserve  # type: ignore[method-assign]

    with running_worker(app, concurrency=2), contextlib.ExitStack() as leaving:
        leaving.callback(gate.set)  # first, so that the jobs at the gate end before the stop
        job.map([("quick",)] * 30)
        for _ in range(30):
            assert quick_done.acquire(timeout=10)
        reads_before = len(asked)
        job.map([("wait",)] * 2)
        # The read that took them, and the one after it, were sized before both slots ran a
        # long job: they may take some of the 20, which the worker then gives back.
        wait_until(lambda: len(asked) > reads_before, message="the read of the two")
        job.map([("wait",)] * 20)
        wait_until(lambda: 22 - tinyq_broker.size("default") == 2,
                   message="2 running, none prefetched")


def test_acks_and_results_are_batched(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker)
    ack_sizes: list[int] = []
    original = tinyq_broker.ack

    def ack(deliveries):  # type: ignore[no-untyped-def]
        ack_sizes.append(len(deliveries))
        time.sleep(0.01)  # a round trip, so that completions pile up behind it
        original(deliveries)

    tinyq_broker.ack = ack  # type: ignore[method-assign]

    @app.task()
    def f(i: int) -> int:
        return i

    handles = f.map([(i,) for i in range(400)])
    app.worker(concurrency=8).run(burst=True)
    assert sum(ack_sizes) == 400
    assert len(ack_sizes) < 200  # several acks share one broker call
    assert [h.result(0) for h in handles[:5]] == [0, 1, 2, 3, 4]


def test_worker_survives_a_broker_outage(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker)

    @app.task()
    def f(i: int) -> int:
        return i * 2

    with running_worker(app, concurrency=2):
        assert f.delay(1).result(timeout=5) == 2
        tinyq_broker.set_available(False)
        time.sleep(0.5)
        tinyq_broker.set_available(True)
        assert f.delay(2).result(timeout=10) == 4  # the same worker, still running


def test_warm_stop_gives_back_unstarted_jobs(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker)
    started = threading.Event()
    release = threading.Event()

    @app.task()
    def block() -> str:
        started.set()
        release.wait(5)
        return "done"

    handles = block.map([()] * 5)
    with running_worker(app, concurrency=1, prefetch=3) as worker:
        assert started.wait(5)
        wait_until(lambda: tinyq_broker.size("default") == 1, message="3 jobs prefetched")
        worker.stop()
        # Given back while the first one still runs, not started after it.
        wait_until(lambda: tinyq_broker.size("default") == 4, message="3 jobs given back")
        release.set()
    assert sum(h.status() == "succeeded" for h in handles) == 1
    assert tinyq_broker.size("default") == 4  # the rest are back in the queue, none lost


def test_cold_stop_gives_back_running_jobs(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker)
    started = threading.Event()

    @app.task()
    def block() -> None:
        started.set()
        time.sleep(3)

    h = block.delay()
    with running_worker(app, concurrency=1, cold=True) as worker:  # run() must return 1
        assert started.wait(5)
        worker.stop()  # warm first; leaving the block stops it cold
    assert h.status() == "queued"
    assert tinyq_broker.size("default") == 1


def test_queues_are_consumed_in_priority_order(tinyq_app: Application) -> None:
    order: list[str] = []

    @tinyq_app.task()
    def note(name: str) -> None:
        order.append(name)

    for i in range(3):
        note.apply_async(args=(f"low{i}",), queue="low")
        note.apply_async(args=(f"high{i}",), queue="high")
    tinyq_app.worker(concurrency=1, executor="inline", queues=["high", "low"]).run(burst=True)
    assert order == ["high0", "high1", "high2", "low0", "low1", "low2"]


def test_a_stopping_worker_wakes_its_mover_at_once() -> None:
    """Its mover may wait up to a second for delayed jobs (on Redis, a blocking read): the
    worker ends that wait as it stops, so it exits at once (a burst worker on Redis took
    about a second to exit)."""
    woken: list[list[str]] = []

    class Recording(MemoryBroker):
        def wake_delayed_waiters(self, queues: Sequence[str]) -> None:
            woken.append(list(queues))

    app = Application(Recording())
    assert app.worker(queues=["a", "b"], scheduler=False).run(burst=True) == 0
    assert woken == [["a", "b"]]
    app.close()
