"""Redis at ``maxmemory`` (policy ``noeviction``) refuses writes part-way through a ``map()``:
the error must say which jobs went in, and retrying must add only the others, each once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tinyq_core import Application, BrokerError, EnqueueError
from tinyq_core.plugin import Result

from redis_server import RedisServer

pytestmark = pytest.mark.redis  # its own server, which the marker rules do not see

# 6,000 jobs of about 300 bytes each in Redis: more than a 2 MB server holds.
ARGUMENTS = [(n, "x" * 100) for n in range(6000)]


@pytest.fixture
def small_server() -> Iterator[RedisServer]:
    server = RedisServer(extra=("--maxmemory", "2mb", "--maxmemory-policy", "noeviction"))
    yield server.start()
    server.close()


def queued_ids(client: redis.Redis, prefix: str) -> tuple[list[str], set[str]]:
    """The job ids in the queue's stream (in order, repeats kept) and in its jobs hash."""
    stream = [fields[b"id"].decode() for _, fields in client.xrange(f"{{{prefix}:default}}:stream")]
    return stream, {key.decode() for key in client.hkeys(f"{{{prefix}:default}}:jobs")}


def test_map_at_oom_names_what_went_in_and_its_retry_adds_only_the_rest(
    small_server: RedisServer,
) -> None:
    app = Application(f"{small_server.url}?prefix=oom")
    client = redis.Redis.from_url(small_server.url)

    @app.task(name="f")
    def f(n: int, text: str) -> int:
        return n

    with pytest.raises(EnqueueError) as info:
        f.map(ARGUMENTS)
    err = info.value
    stream, hashed = queued_ids(client, "oom")
    # Part went in (whole script calls of 1,000 jobs), and the error names exactly that part.
    assert 0 < len(stream) < 6000
    assert len(stream) % 1000 == 0
    assert [h.id for h in err.enqueued] == stream
    assert set(stream) == hashed == set(err.enqueued_ids)
    assert len(err.not_enqueued) == 6000 - len(stream)
    assert not {h.id for h in err.not_enqueued} & hashed
    text = str(err)
    assert f"{len(stream):,} of 6,000 jobs enqueued" in text
    assert "out of memory" in text and "maxmemory" in text and ".retry()" in text
    assert "\n" not in text
    assert isinstance(err, BrokerError)

    with pytest.raises(EnqueueError):  # still full: nothing more goes in, and it says so again
        err.retry()
    assert queued_ids(client, "oom")[0] == stream

    client.config_set("maxmemory", 0)
    handles = err.retry()
    stream, hashed = queued_ids(client, "oom")
    assert len(stream) == len(set(stream)) == 6000  # each job exactly once
    assert [h.id for h in handles] == [*(h.id for h in err.enqueued),
                                       *(h.id for h in err.not_enqueued)]
    assert set(stream) == hashed == {h.id for h in handles}


def test_the_same_map_call_with_job_ids_is_safe_to_repeat(small_server: RedisServer) -> None:
    app = Application(f"{small_server.url}?prefix=ids")
    client = redis.Redis.from_url(small_server.url)

    @app.task(name="f")
    def f(n: int, text: str) -> int:
        return n

    ids = [f"job-{n}" for n in range(6000)]
    with pytest.raises(EnqueueError) as info:
        f.map(ARGUMENTS, job_ids=ids)
    went_in = queued_ids(client, "ids")[0]
    assert went_in == [h.id for h in info.value.enqueued] == ids[: len(went_in)]
    client.config_set("maxmemory", 0)
    handles = f.map(ARGUMENTS, job_ids=ids)  # the same call again
    assert [h.id for h in handles] == ids
    stream, hashed = queued_ids(client, "ids")
    assert stream == ids and hashed == set(ids)


def test_delay_at_oom_says_redis_is_out_of_memory(small_server: RedisServer) -> None:
    app = Application(f"{small_server.url}?prefix=one")
    client = redis.Redis.from_url(small_server.url)
    client.config_set("maxmemory", 0)
    client.set("filler", b"x" * 3 * 1024 * 1024)
    client.config_set("maxmemory", 2 * 1024 * 1024)  # now well above it

    @app.task(name="f")
    def f(x: int) -> int:
        return x

    for call in (lambda: f.delay(1), lambda: f.apply_async((1,), countdown=60)):
        with pytest.raises(EnqueueError) as info:
            call()
        text = str(info.value)
        assert text.startswith("0 of 1 job enqueued: Redis at redis://127.0.0.1:")
        assert "out of memory" in text and "maxmemory" in text and ".retry()" in text
        assert "\n" not in text and "script:" not in text
        assert info.value.enqueued == [] and len(info.value.not_enqueued) == 1
    assert client.keys("{one:*") == []
    with pytest.raises(BrokerError) as stored:  # any other write refused for memory says so too
        app.broker.result_backend().store([Result("x", b"1", "default")], 60)
    assert str(stored.value).endswith("is out of memory (used memory over maxmemory) and "
                                      "refused the write; free memory (let workers drain the "
                                      "queues, purge some, delete other keys) or raise maxmemory")
    client.config_set("maxmemory", 0)
    [handle] = info.value.retry()
    assert handle.id == info.value.not_enqueued[0].id
    assert handle.status() == "scheduled"
