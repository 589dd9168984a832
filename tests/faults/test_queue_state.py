"""A queue's state in Redis outlived by its marks, and admin scripts that grow with a queue.

* The stream (or the delayed set) is deleted or trimmed by an operator: the jobs hash still
  marks its jobs as queued; they must read "unknown" and enqueue again under the same id.
* ``purge()``, ``requeue_dead_letters()``, recovery and ``status()`` on a queue of hundreds of
  thousands of jobs: no single command may hold Redis up, and the counts are exact.

How long Redis is held up is measured twice: the main thread's CPU time per script call
(``INFO cpu``; the same on a loaded machine) must stay under ``CPU_PER_CALL_MS``, and no
command may take longer than ``SLOWEST_MS`` of wall time (``SLOWLOG``). On an idle machine the
chunked calls take 1-5 ms; under ``-n 4`` on two busy cores, CPU starvation alone stretched
some to 110 ms of wall time, hence the looser wall bound. Before the fix, at these sizes, a
single call took 2.7 s (purge) and 5.7 s (requeue).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from tinyq_core import Application
from tinyq_core.plugin import Message
from tinyq_redis import RedisBroker

from redis_server import RedisServer

pytestmark = pytest.mark.redis  # its own server, which the marker rules do not see

CPU_PER_CALL_MS = 10.0
SLOWEST_MS = 500


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


def _app(server: RedisServer, prefix: str) -> Application:
    return Application(f"{server.url}?prefix={prefix}&visibility_timeout=0.5")


# -- item 4: stale marks -------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["del", "xtrim", "delayed-del"])
def test_a_job_whose_entry_is_gone_reads_unknown_and_enqueues_again(
    server: RedisServer, raw: redis.Redis, loss: str
) -> None:
    app = _app(server, f"stale-{loss}")

    @app.task(name="bill")
    def bill(n: int) -> int:
        return n * 2

    keys = app.broker.keys("default")  # type: ignore[attr-defined]
    if loss == "delayed-del":
        first = bill.apply_async((1,), job_id="invoice-42", countdown=3600)
        assert first.status() == "scheduled"
        raw.delete(keys.delayed, keys.payloads)
    else:
        first = bill.apply_async((1,), job_id="invoice-42")
        assert first.status() == "queued"
        if loss == "del":
            raw.delete(keys.stream)
        else:
            raw.xtrim(keys.stream, maxlen=0)
    assert first.status() == "unknown"

    again = bill.apply_async((21,), job_id="invoice-42")
    assert again.status() == "queued"
    app.worker(concurrency=1).run(burst=True)
    assert again.result(timeout=5) == 42


def test_a_late_ack_of_a_trimmed_entry_keeps_the_new_entrys_mark(
    server: RedisServer, raw: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?visibility_timeout=30", prefix="late-ack")
    keys = broker.keys("q")
    broker.enqueue([Message("invoice-7", "q", b"one")])
    [old] = broker.reserve(["q"], 1, 0)
    raw.xtrim(keys.stream, maxlen=0)  # the leased entry is gone from the stream, still pending
    broker.enqueue([Message("invoice-7", "q", b"two")])
    assert broker.status("invoice-7", "q") == "queued"
    broker.ack([old])  # the worker of the first entry reports late
    assert broker.status("invoice-7", "q") == "queued"
    broker.enqueue([Message("invoice-7", "q", b"three")])  # still deduplicated
    assert broker.size("q") == 1
    [new] = broker.reserve(["q"], 5, 0)
    assert (new.id, new.message.body) == ("invoice-7", b"two")
    assert broker.status("invoice-7", "q") == "started"
    broker.ack([new])
    assert broker.status("invoice-7", "q") == "unknown"
    broker.close()


def test_marks_of_an_older_version_still_read_and_deduplicate(
    server: RedisServer, raw: redis.Redis
) -> None:
    """A queue written before marks held entry ids ("q"): read as before; a queue whose
    stream is gone does not keep them alive."""
    broker = RedisBroker(f"{server.url}?visibility_timeout=30", prefix="legacy")
    keys = broker.keys("q")
    broker.enqueue([Message("a", "q", b"a"), Message("b", "q", b"b")])
    raw.hset(keys.jobs, mapping={"a": "q", "b": "q"})  # as the older enqueue wrote them
    [leased] = broker.reserve(["q"], 1, 0)
    assert (broker.status("a", "q"), broker.status("b", "q")) == ("started", "queued")
    broker.enqueue([Message("b", "q", b"b")])
    assert broker.size("q") == 1  # still deduplicated
    broker.ack([leased])
    assert broker.status("a", "q") == "unknown"
    raw.delete(keys.stream)
    assert broker.status("b", "q") == "unknown"
    broker.enqueue([Message("b", "q", b"b2")])
    assert broker.size("q") == 1
    broker.close()


# -- item 10: bounded scripts --------------------------------------------------------------------

BIG = 300_000
PENDING = 50_000


FILL = """
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local id = "j" .. i
  if ARGV[3] == "dead" then
    redis.call("XADD", KEYS[1], "*", "id", id, "b", "x", "reason", "r", "error", "",
      "attempts", 1, "at", 0)
  else
    redis.call("XADD", KEYS[1], "*", "id", id, "b", "x")
    redis.call("HSET", KEYS[2], id, "q")
  end
end
if ARGV[3] == "leased" then
  redis.call("XREADGROUP", "GROUP", "tinyq", "filler", "COUNT", ARGV[2] - ARGV[1] + 1,
    "STREAMS", KEYS[1], ">")
end
"""


def _fill(raw: redis.Redis, broker: RedisBroker, queue: str, n: int, kind: str = "q") -> None:
    """``n`` jobs ``j0``... written straight into the stream by a script, fast: waiting,
    ``leased`` or ``dead`` letters. Their marks are an older version's ("q"), the slowest to
    read."""
    keys = broker.keys(queue)
    broker._ensure_groups([queue])
    fill = raw.register_script(FILL)
    pipe = raw.pipeline(transaction=False)
    for start in range(0, n, 10_000):
        fill(keys=[keys.dead if kind == "dead" else keys.stream, keys.jobs],
             args=[start, min(n, start + 10_000) - 1, kind], client=pipe)
    pipe.execute()


def _cpu_and_calls(raw: redis.Redis) -> tuple[float, int]:
    cpu: dict[str, float] = raw.info("cpu")  # type: ignore[assignment]
    stats: dict[str, dict[str, int]] = raw.info("commandstats")  # type: ignore[assignment]
    calls = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    return cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"], calls


@contextmanager
def holds_redis_up_briefly(raw: redis.Redis) -> Iterator[None]:
    """Assert that the block's script calls each hold Redis up briefly (see the docstring)."""
    raw.config_set("slowlog-log-slower-than", SLOWEST_MS * 1000)
    raw.slowlog_reset()
    cpu, calls = _cpu_and_calls(raw)
    yield
    cpu_after, calls_after = _cpu_and_calls(raw)
    slow = [(e["duration"], e["command"][:60]) for e in raw.slowlog_get(10)]
    raw.config_set("slowlog-log-slower-than", 10_000)
    per_call_ms = (cpu_after - cpu) * 1000 / max(1, calls_after - calls)
    assert per_call_ms < CPU_PER_CALL_MS, f"{calls_after - calls} script calls"
    assert slow == []


def test_purge_of_a_big_queue_holds_redis_up_for_milliseconds(
    server: RedisServer, raw: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?socket_timeout=1", prefix="bigpurge")
    _fill(raw, broker, "q", BIG)
    broker.enqueue([Message("late", "q", b"x", due=time.time() + 3600)])
    leased = broker.reserve(["q"], 10, 0)
    with holds_redis_up_briefly(raw):
        assert broker.purge("q") == BIG - 10 + 1
    assert (broker.size("q"), broker.count_leased("q")) == (0, 10)
    assert broker.status(leased[0].id, "q") == "started"
    broker.close()


def test_requeue_of_many_dead_letters_holds_redis_up_for_milliseconds(
    server: RedisServer, raw: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?socket_timeout=1", prefix="bigdead")
    _fill(raw, broker, "q", BIG // 2, "dead")
    with holds_redis_up_briefly(raw):
        assert broker.requeue_dead_letters("q", ["j7", "j9", "nope"]) == 2
        assert broker.requeue_dead_letters("q") == BIG // 2 - 2
    assert broker.size("q") == BIG // 2
    assert broker.status("j7", "q") == "queued"
    broker.close()


def test_recovery_and_status_over_a_big_pending_list(
    server: RedisServer, raw: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?socket_timeout=1&visibility_timeout=30",
                         prefix="bigpending")
    _fill(raw, broker, "q", PENDING, "leased")  # older marks: status() scans for them
    last = f"j{PENDING - 1}"
    with holds_redis_up_briefly(raw):
        assert broker.recover(["q"]) == 0  # none expired: the whole pending list is scanned
        assert broker.status("nope", "q") == "unknown"
        assert broker.status(last, "q") == "started"  # the last of the pending list
    with holds_redis_up_briefly(raw):
        broker.visibility_timeout = 0  # every lease expired
        assert broker.recover(["q"]) == PENDING
    assert (broker.size("q"), broker.count_leased("q")) == (PENDING, 0)
    assert broker.status(last, "q") == "queued"  # its mark follows it to its new entry
    broker.close()
