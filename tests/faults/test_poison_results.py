"""A result the broker refuses to store must fail alone: its job is failed and dead-lettered
with the reason, every other outcome goes through, and the worker goes on.

Redis drops the connection on a bulk string over ``proto-max-bulk-len`` (512 MB by default;
4 MB here): the whole settle pipeline that carries it fails, every time it is sent, and reads
like an outage. Before the fix the worker re-sent that batch forever, so no later job reported
(issue 12 item 1). ``max_result_size`` refuses such a result before it is sent.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyq_core import Application, JobFailed, JobHandle
from tinyq_core._codec import Codec
from tinyq_core._serializers import JSONSerializer
from tinyq_core._worker.policy import AckJob, RetryJob, Settlement
from tinyq_core._worker.sift import Sifter
from tinyq_core.plugin import Delivery, Message, Result
from tinyq_memory import MemoryBroker

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until
from support.worker_thread import running_worker

BIG = 5 * 1024 * 1024  # bytes of the poison result: over the server's 4 MB

POISON_APP = '''
import os
from tinyq_core import Application

# Unbounded results: the poison must reach Redis (max_result_size would refuse it first).
app = Application(os.environ["TINYQ_URL"], max_result_size=None)

@app.task(name="big")
def big(n):
    return "x" * n

@app.task(name="small")
def small(i):
    return i
'''


@pytest.fixture(scope="module")
def strict_server() -> Iterator[RedisServer]:
    """A server that refuses (drops the connection on) any value over 4 MB."""
    server = RedisServer(extra=("--proto-max-bulk-len", "4mb")).start()
    yield server
    server.close()


def results_within(handles: list[JobHandle[int]], seconds: float) -> list[int]:
    """The results that arrive within ``seconds`` in all (a wedged worker reports none)."""
    deadline = time.monotonic() + seconds
    got = []
    for h in handles:
        try:
            got.append(h.result(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            pass
    return got


def assert_failed_alone(app: Application, h: JobHandle[str]) -> None:
    """The poison job failed with the reason and is in the dead letters."""
    with pytest.raises(JobFailed, match="result could not be stored") as info:
        h.result(timeout=10)
    assert info.value.exc_type == "ResultNotStored"
    assert h.status() == "failed"
    [letter] = [d for d in app.broker.dead_letters("default") if d.message.id == h.id]
    assert letter.reason.startswith("result could not be stored: ")


@pytest.mark.redis
def test_a_result_redis_refuses_fails_alone_in_a_worker_process(
    tmp_path: Path, strict_server: RedisServer
) -> None:
    with AppProject(tmp_path, POISON_APP, url=strict_server.url, visibility_timeout=30) as p:
        big, small = p.app.tasks["big"], p.app.tasks["small"]
        poison = big.delay(BIG)
        first = small.map([(i,) for i in range(50)])
        worker = p.worker("-w", "4")
        assert sorted(results_within(first, 20)) == list(range(50))
        assert_failed_alone(p.app, poison)
        second = small.map([(i,) for i in range(50, 100)])
        assert sorted(results_within(second, 10)) == list(range(50, 100))
        assert worker.poll() is None
        p.stop(worker)

        # A fresh worker whose only job is a poison: nothing to split it from.
        lone = big.delay(BIG)
        worker = p.worker("-w", "2")
        assert_failed_alone(p.app, lone)
        after = small.delay(7)
        assert after.result(timeout=10) == 7
        out = p.stop(worker)
        assert "could not be sent" in out
        assert p.app.broker.count_leased("default") == 0


@pytest.mark.redis
def test_max_result_size_fails_a_larger_result_before_it_is_sent(
    strict_server: RedisServer,
) -> None:
    app = Application(f"{strict_server.url}?prefix=limit", max_result_size=1000)
    runs: list[int] = []

    @app.task(name="sized", max_retries=3, retry_backoff=0)
    def sized(n: int) -> str:
        runs.append(n)
        return "x" * n

    @app.task(name="loud")
    def loud(n: int) -> None:
        raise ValueError("y" * n)

    over, under, failure = sized.delay(2000), sized.delay(10), loud.delay(100_000)
    app.worker(concurrency=2).run(burst=True)
    with pytest.raises(JobFailed, match=r"result of 2,0\d\d bytes is over max_result_size "
                                        r"\(1,000\)") as info:
        over.result(timeout=5)
    assert info.value.exc_type == "ResultTooLarge"
    assert runs.count(2000) == 1  # no retries: running it again cannot make it smaller
    assert under.result(timeout=5) == "x" * 10
    # A failure over the limit is reported all the same, shortened.
    with pytest.raises(JobFailed, match="shortened: over max_result_size") as info:
        failure.result(timeout=5)
    assert info.value.exc_type == "ValueError"
    assert len(str(info.value)) < 2000
    letters = {d.message.id: d for d in app.broker.dead_letters("default")}
    assert letters[over.id].reason.startswith("result of 2,0")
    assert failure.id in letters and under.id not in letters

    # The default limit (that of max_message_size) stops the poison before Redis sees it.
    default = Application(f"{strict_server.url}?prefix=default")
    assert default.max_result_size == default.max_message_size == 1024 * 1024
    big = default.task(name="big")(lambda n: "x" * n)
    h = big.delay(BIG)
    default.worker(concurrency=1).run(burst=True)
    with pytest.raises(JobFailed, match="over max_result_size"):
        h.result(timeout=5)


# -- the same on the memory broker (the quick lane) -------------------------------------------


class CountingBroker(MemoryBroker):
    """Counts pings: the worker pings after a send fails, before it sifts the batch."""

    pings = 0

    def ping(self) -> None:
        self.pings += 1
        super().ping()


def memory_app(broker: MemoryBroker) -> tuple[Application, threading.Event]:
    app = Application(broker, max_result_size=None)
    release = threading.Event()

    @app.task(name="sized")
    def sized(n: int) -> str:
        release.wait(10)
        return "x" * n

    return app, release


def test_a_poison_result_fails_alone_on_the_memory_broker() -> None:
    broker = MemoryBroker()
    broker.refuse_values_over(10_000)
    app, release = memory_app(broker)
    release.set()
    sized = app.tasks["sized"]
    poison = sized.delay(20_000)
    handles = sized.map([(i,) for i in range(30)])
    with running_worker(app, concurrency=4):
        assert [h.result(timeout=10) for h in handles] == ["x" * i for i in range(30)]
        with pytest.raises(JobFailed, match="result could not be stored") as info:
            poison.result(timeout=10)
    assert info.value.exc_type == "ResultNotStored"
    assert "a result of 20,0" in str(info.value)
    [letter] = broker.dead_letters("default")
    assert letter.message.id == poison.id
    assert broker.count_leased("default") == 0


@pytest.mark.parametrize("fault", ["outage", "refuses everything"])
def test_a_broker_wide_failure_never_dead_letters(fault: str) -> None:
    """Down (ping fails too), or up but refusing every result (as Redis at maxmemory): the
    outcomes wait and go through once the broker takes them again."""
    broker = CountingBroker()
    app, release = memory_app(broker)
    handles = app.tasks["sized"].map([(i,) for i in range(1, 5)])
    with running_worker(app, concurrency=4) as worker:
        wait_until(lambda: broker.count_leased("default") == 4, message="4 jobs running")
        if fault == "outage":
            broker.set_available(False)
        else:
            broker.refuse_values_over(0)
        release.set()
        wait_until(lambda: worker.processed == 4, message="4 jobs run")
        pings = broker.pings
        wait_until(lambda: broker.pings >= pings + 3, message="three failed sends")
        broker.set_available(True)
        broker.refuse_values_over(None)
        assert [h.result(timeout=10) for h in handles] == ["x" * i for i in range(1, 5)]
    assert broker.dead_letters("default") == []


def test_a_sift_finds_one_poison_in_few_sends_and_stops_when_all_fail() -> None:
    codec = Codec(JSONSerializer())

    def ack(i: int, size: int) -> AckJob:
        delivery = Delivery(Message(f"j{i}", "default", b"{}"), 1, i)
        return AckJob(delivery, Result(f"j{i}", b"x" * size))

    sends: list[int] = []
    limit = 1000

    def send(batch: list[Settlement], count: int, timeout: float) -> list[Delivery]:
        sends.append(len(batch))
        if any(s.result is not None and len(s.result.body) > limit
               for s in batch if not isinstance(s, RetryJob)):
            raise ConnectionResetError("dropped")
        return []

    sifter = Sifter(MemoryBroker(), send, codec)
    batch: list[Settlement] = [ack(i, 5000 if i == 37 else 10) for i in range(64)]
    sifted = sifter(batch)
    assert (sifted.kept, sifted.replaced) == ([], 1)
    assert len(sends) <= 2 * math.log2(64) + 2  # halves down to it, once more, the stand-in

    limit = -1  # nothing goes through: the broker, not a settlement, is at fault
    sends.clear()
    sifted = sifter(batch)
    assert sorted(sifted.kept, key=id) == sorted(batch, key=id)
    assert sifted.replaced == 0
    assert len(sends) <= 2 * math.log2(64) + 2
