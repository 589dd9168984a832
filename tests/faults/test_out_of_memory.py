"""Redis at ``maxmemory`` (issue 12, items 2 and 3), against a real redis-server of 2 MB.

With ``noeviction`` Redis refuses writes at the limit: tinyq's scripts must be refused like
any write (no result stored past the limit), the worker keeps the outcomes it could not
report and sends them once memory is freed, a queue filled before any worker started can be
drained, and a stored result can still be read. An eviction policy that deletes any key
(``allkeys-*``) loses queued jobs without a word: it is refused unless opted out of."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from tinyq_core import Application, BrokerError, ConfigurationError

from redis_server import RedisServer
from support.waiting import wait_until
from support.worker_thread import running_worker

pytestmark = pytest.mark.redis  # its own servers, which the marker rules do not see

MAXMEMORY = 2 * 1024 * 1024
PAD = "x" * 2000


@pytest.fixture
def full_server() -> Iterator[RedisServer]:
    server = RedisServer(extra=("--maxmemory", "2mb", "--maxmemory-policy", "noeviction"))
    server.start()
    yield server
    server.close()


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def key_bytes(client: redis.Redis) -> int:
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in client.keys())


def fill_with_ballast(client: redis.Redis) -> int:
    """Fill Redis up to maxmemory with a key of its own (deleting it frees the memory), then
    lower maxmemory 256 kB under what is used: Redis stays past it even when it frees a
    client's buffers meanwhile. Returns the memory used then."""
    for _ in range(100_000):
        try:
            client.rpush("ballast", "b" * 1000)
        except redis.exceptions.OutOfMemoryError:
            used = used_memory(client)
            client.config_set("maxmemory", used - 256 * 1024)
            return used
    pytest.fail("Redis took 100 MB without reaching maxmemory")


def free_memory(client: redis.Redis) -> None:
    client.delete("ballast")
    client.config_set("maxmemory", MAXMEMORY)


def test_a_worker_drains_a_queue_filled_to_maxmemory_before_any_worker(
    full_server: RedisServer,
) -> None:
    app = Application(f"{full_server.url}?prefix=oom")

    @app.task(name="noop", store_result=False)
    def noop(pad: str) -> None:
        return None

    enqueued = 0
    with pytest.raises(BrokerError, match="maxmemory"):
        for _ in range(10_000):
            noop.delay(PAD)
            enqueued += 1
    assert enqueued > 100
    client = redis.Redis.from_url(full_server.url)
    before = fill_with_ballast(client)  # sure to be past the limit when the worker starts
    with running_worker(app, concurrency=4):
        # Before: XGROUP CREATE was refused at OOM and the worker retried in silence.
        wait_until(lambda: client.xlen("{oom:default}:stream") == 0, timeout=10,
                   message="the worker to drain the full queue")
    assert used_memory(client) < before - enqueued * len(PAD) // 2  # draining freed memory


def test_results_are_not_stored_past_maxmemory_and_arrive_once_memory_is_freed(
    full_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = Application(f"{full_server.url}?prefix=oom")

    @app.task(name="big")
    def big(n: int) -> str:
        return str(n) * 10_000  # 20 of them: a tenth of maxmemory

    handles = [big.delay(n % 10) for n in range(20)]
    client = redis.Redis.from_url(full_server.url)
    fill_with_ballast(client)
    data_at_limit = key_bytes(client)
    caplog.set_level(logging.ERROR, logger="tinyq.worker")
    with running_worker(app, concurrency=4):
        wait_until(lambda: "out of memory" in caplog.text, timeout=10,
                   message="the worker to say Redis is out of memory")
        assert "not reported" in caplog.text
        # Before: the settle script began with DEL, which Redis allows at OOM, and then
        # stored every result past the limit.
        # The keys, not the clients' buffers (a refused report's results sit in one).
        assert key_bytes(client) < data_at_limit + 64 * 1024
        assert client.keys("*result*") == []
        free_memory(client)
        for n, h in enumerate(handles):
            assert h.result(timeout=10) == str(n % 10) * 10_000


def add(m: int, n: int) -> int:
    return m + n


def test_a_stored_result_is_read_with_a_timeout_at_maxmemory(full_server: RedisServer) -> None:
    app = Application(f"{full_server.url}?prefix=oom")
    h = app.task(name="add")(add).delay(2, 3)
    app.worker(concurrency=1).run(burst=True)
    fill_with_ballast(redis.Redis.from_url(full_server.url))
    # Before: BRPOPLPUSH is refused at OOM even though the list holds the value.
    assert h.result(timeout=2) == 5


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-random"])
def test_an_eviction_policy_that_deletes_jobs_is_refused_unless_allowed(policy: str) -> None:
    server = RedisServer(extra=("--maxmemory", "100mb", "--maxmemory-policy", policy)).start()
    try:
        producer = Application(f"{server.url}?prefix=evict")
        with pytest.raises(ConfigurationError, match=r"noeviction.*allow_eviction"):
            producer.task(name="add")(add).delay(1, 2)  # a producer's first use
        worker_app = Application(f"{server.url}?prefix=evict")
        worker_app.task(name="add")(add)
        with pytest.raises(ConfigurationError, match=policy):
            worker_app.worker(concurrency=1).run(burst=True)  # a worker's start

        allowed = Application(f"{server.url}?prefix=evict&allow_eviction=true")
        h = allowed.task(name="add")(add).delay(1, 2)
        allowed.worker(concurrency=1).run(burst=True)
        assert h.result(timeout=5) == 3
    finally:
        server.close()


def test_a_policy_that_evicts_results_only_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer(extra=("--maxmemory", "100mb", "--maxmemory-policy",
                                "volatile-lru")).start()
    try:
        app = Application(f"{server.url}?prefix=evict")
        task = app.task(name="add")(add)
        caplog.set_level(logging.WARNING)
        handles = [task.delay(1, n) for n in range(3)]
        app.worker(concurrency=1).run(burst=True)
        assert [h.result(timeout=5) for h in handles] == [1, 2, 3]
        warnings = [r for r in caplog.records if "volatile-lru" in r.getMessage()]
        assert len(warnings) == 1, caplog.text
    finally:
        server.close()


def test_a_queue_without_its_group_at_maxmemory_gets_a_clear_error(
    full_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A stream made without its group (by hand, or by an older tinyq) and then filled: the
    worker cannot create the group at the limit, and says so, with what to do."""
    client = redis.Redis.from_url(full_server.url)
    client.xadd("{oom:default}:stream", {"id": "x", "b": "{}"})
    fill_with_ballast(client)
    app = Application(f"{full_server.url}?prefix=oom")
    caplog.set_level(logging.ERROR, logger="tinyq.worker")
    with running_worker(app, concurrency=1):
        wait_until(lambda: "refuses to create the consumer group of queue 'default'"
                   in caplog.text, timeout=10, message="the worker to say what is wrong")
    assert "raise maxmemory" in caplog.text
