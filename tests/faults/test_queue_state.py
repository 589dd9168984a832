"""A queue's state in Redis outlived by its marks, and admin scripts that grow with a queue.

* The stream (or the delayed set) is deleted or trimmed by an operator: the jobs hash still
  marks its jobs as queued; they must read "unknown" and enqueue again under the same id.
* ``purge()``, ``requeue_dead_letters()``, recovery and ``status()`` on a queue of hundreds of
  thousands of jobs: no single command may hold Redis up (SLOWLOG), and the counts are exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from tinyq_core import Application
from tinyq_core.plugin import Delivery, Message
from tinyq_redis import RedisBroker
from tinyq_redis._keys import GROUP

from redis_server import RedisServer

pytestmark = pytest.mark.redis  # its own server, which the marker rules do not see

SLOW_US = 50_000  # no single command may run longer than this (µs)


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
"""


def _fill(raw: redis.Redis, broker: RedisBroker, queue: str, n: int, *, dead: bool = False) -> None:
    """``n`` jobs written straight into the stream (or the dead letters) by a script, fast.
    Their marks are those of an older version ("q"): the slowest to read."""
    keys = broker.keys(queue)
    broker._ensure_groups([queue])
    fill = raw.register_script(FILL)
    pipe = raw.pipeline(transaction=False)
    for start in range(0, n, 10_000):
        fill(keys=[keys.dead if dead else keys.stream, keys.jobs],
             args=[start, min(n, start + 10_000) - 1, "dead" if dead else "q"], client=pipe)
    pipe.execute()


@pytest.fixture
def slowlog(raw: redis.Redis) -> Iterator[redis.Redis]:
    raw.config_set("slowlog-log-slower-than", SLOW_US)
    raw.slowlog_reset()
    yield raw
    raw.config_set("slowlog-log-slower-than", 10_000)


def _slow(raw: redis.Redis) -> list[tuple[int, str]]:
    return [(e["duration"], e["command"][:60]) for e in raw.slowlog_get(100)]


def test_purge_of_a_big_queue_holds_redis_up_for_milliseconds(
    server: RedisServer, slowlog: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?socket_timeout=1", prefix="bigpurge")
    _fill(slowlog, broker, "q", BIG)
    broker.enqueue([Message("late", "q", b"x", due=time.time() + 3600)])
    leased = broker.reserve(["q"], 10, 0)
    slowlog.slowlog_reset()
    assert broker.purge("q") == BIG - 10 + 1
    assert _slow(slowlog) == []
    assert (broker.size("q"), broker.count_leased("q")) == (0, 10)
    assert broker.status(leased[0].id, "q") == "started"
    broker.close()


def test_requeue_of_many_dead_letters_holds_redis_up_for_milliseconds(
    server: RedisServer, slowlog: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?socket_timeout=1", prefix="bigdead")
    _fill(slowlog, broker, "q", BIG // 2, dead=True)
    slowlog.slowlog_reset()
    assert broker.requeue_dead_letters("q", ["j7", "j9", "nope"]) == 2
    assert broker.requeue_dead_letters("q") == BIG // 2 - 2
    assert _slow(slowlog) == []
    assert broker.size("q") == BIG // 2
    assert broker.status("j7", "q") == "queued"
    broker.close()


def test_recovery_and_status_over_a_big_pending_list(
    server: RedisServer, slowlog: redis.Redis
) -> None:
    broker = RedisBroker(f"{server.url}?socket_timeout=1&visibility_timeout=30",
                         prefix="bigpending")
    _fill(slowlog, broker, "q", BIG // 2)
    leased: list[Delivery] = []
    while len(leased) < BIG // 2:
        leased += broker.reserve(["q"], 10_000, 0)
    slowlog.slowlog_reset()
    assert broker.recover(["q"]) == 0  # none expired: the whole pending list is scanned
    assert broker.status("nope", "q") == "unknown"
    slowlog.hset(broker.keys("q").jobs, "j1", "q")  # a mark of an older version: a scan
    assert broker.status(leased[-1].id, "q") == "started"
    broker.visibility_timeout = 0  # every lease expired
    assert broker.recover(["q"]) == BIG // 2
    assert _slow(slowlog) == []
    assert (broker.size("q"), broker.count_leased("q")) == (BIG // 2, 0)
    slowlog.xgroup_destroy(broker.keys("q").stream, GROUP)
    broker.close()
