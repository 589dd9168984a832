"""tinyq-redis's URIs: unix://, rediss:// (TLS) with an ACL user, and the query options."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tinyq_core import Application, BrokerError, BrokerUnavailable, ConfigurationError
from tinyq_redis import RedisBroker

from redis_server import RedisServer


def round_trip(app: Application) -> None:
    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    h = add.delay(2, 3)
    later = add.apply_async(args=(1, 1), countdown=0.1)
    assert later.status() == "scheduled"
    time.sleep(0.15)  # its countdown: due when the burst worker looks
    app.worker(concurrency=2).run(burst=True)
    assert h.result(timeout=5) == 5
    assert later.result(timeout=5) == 2


@pytest.fixture(scope="module")
def tls_server() -> Iterator[RedisServer]:
    server = RedisServer(tls=True, extra=(
        "--user", "default", "off",
        "--user", "alice", "on", ">s3cret-pw", "~*", "&*", "+@all",
    )).start()
    yield server
    server.close()


def test_unix_socket(redis_server: RedisServer) -> None:
    app = Application(f"unix://{redis_server.socket}?db=3&prefix=unixtest")
    round_trip(app)
    assert app.broker.client.connection_pool.connection_kwargs["path"] == str(redis_server.socket)


def test_tls_with_an_acl_user(tls_server: RedisServer) -> None:
    url = tls_server.url.replace("rediss://", "rediss://alice:s3cret-pw@")
    app = Application(url)
    round_trip(app)


def test_tls_with_a_wrong_password_is_a_clear_error_without_the_secret(
    tls_server: RedisServer,
) -> None:
    url = tls_server.url.replace("rediss://", "rediss://alice:wrong-pw@")
    broker = RedisBroker(url)
    with pytest.raises(BrokerError) as info:
        broker.ping()
    assert "wrong-pw" not in str(info.value)
    assert "rediss://alice:***@127.0.0.1" in str(info.value)


def test_tls_without_the_ca_is_refused(tls_server: RedisServer) -> None:
    url = tls_server.url.split("?")[0].replace("rediss://", "rediss://alice:s3cret-pw@")
    with pytest.raises(BrokerUnavailable):
        RedisBroker(url).ping()


def test_uri_options() -> None:
    broker = RedisBroker("redis://localhost:1/2?visibility_timeout=2.5&prefix=app1"
                         "&socket_timeout=3&max_connections=7")
    assert broker.visibility_timeout == 2.5
    assert broker.keys("q").stream == "{app1:q}:stream"
    kwargs = broker.client.connection_pool.connection_kwargs
    assert (kwargs["db"], kwargs["socket_timeout"]) == (2, 3.0)
    assert broker.client.connection_pool.max_connections == 7
    assert RedisBroker("redis://", visibility_timeout=4).visibility_timeout == 4
    assert RedisBroker("redis://").visibility_timeout == 30


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("redis://?visiblity_timeout=5", "unknown option(s) in the Redis URI: visiblity_timeout"),
        ("redis://?visibility_timeout=soon", "visibility_timeout must be a number"),
        ("redis://?visibility_timeout=0", "more than 0"),
        ("redis://?prefix={x}", "without braces"),
    ],
)
def test_bad_uri_options_are_clear_errors(uri: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Application(uri).broker  # noqa: B018


@pytest.mark.parametrize(
    ("uri", "suggestion"),
    [
        ("redis://localhost?visiblity_timeout=5",
         "visiblity_timeout (did you mean visibility_timeout?)"),
        ("rediss://localhost?socket_timout=5", "socket_timout (did you mean socket_timeout?)"),
        ("unix:///tmp/r.sock?prefx=app", "prefx (did you mean prefix?)"),
        ("redis://localhost?bogus=1", "Redis URI: bogus; "),
    ],
)
def test_a_misspelt_uri_option_suggests_the_closest_name(uri: str, suggestion: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisBroker(uri)
    message = str(info.value)
    assert suggestion in message
    assert "\n" not in message
    # tinyq's own options first, then redis-py's usual ones; where the rest are: the docs.
    ours = message.index(
        "tinyq's options: visibility_timeout, prefix, durable_timeout, allow_eviction;"
    )
    assert ours < message.index("redis-py's usual ones: socket_timeout, ")
    assert "docs/redis.md" in message
    for internal in ("maint_notifications_pool_handler", "himport_registry", "command_packer",
                     "orig_socket_timeout", "event_dispatcher"):
        assert internal not in message
    assert len(message) < 400


def test_a_queue_name_that_is_not_text_is_refused(redis_server: RedisServer) -> None:
    app = Application(f"{redis_server.url}?prefix=surrogates")

    @app.task(queue="\ud800")  # a lone surrogate: no UTF-8 for it, so no Redis key
    def f() -> None:
        return None

    with pytest.raises(ConfigurationError, match="cannot be encoded as UTF-8") as info:
        f.delay()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigurationError, match="cannot be encoded as UTF-8"):
        RedisBroker(redis_server.url, prefix="\udfff")
    assert app.broker.queues() == []


def test_a_prefix_with_a_colon_is_refused() -> None:
    """``{prefix:queue}`` is split at its first ':', so that prefix ``a`` with queue ``b:c``
    and prefix ``a:b`` with queue ``c`` cannot share the keys ``{a:b:c}:...``."""
    with pytest.raises(ConfigurationError, match="prefix 'a:b' must not contain ':'") as info:
        RedisBroker("redis://localhost:1?prefix=a:b")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigurationError, match="must not contain ':'"):
        RedisBroker("redis://localhost:1", prefix="a:b")
    streams: dict[str, tuple[str, str]] = {}
    for prefix in ("a", "ab", "a_b", "a-b", "b"):
        broker = RedisBroker(f"redis://localhost:1?prefix={prefix}")
        for queue in ("b:c", "c", "b", ":c", "c:", "b:c:d", "ab:c"):
            stream = broker.keys(queue).stream
            assert stream not in streams, (prefix, queue, streams[stream])
            streams[stream] = (prefix, queue)
    assert streams["{a:b:c}:stream"] == ("a", "b:c")  # queue names keep their colons


def test_queue_names_with_braces_are_refused(redis_server: RedisServer) -> None:
    app = Application(redis_server.url)

    @app.task(queue="a{b}")
    def f() -> None:
        return None

    with pytest.raises(ConfigurationError, match="without braces"):
        f.delay()


def test_scripts_are_loaded_again_after_redis_forgets_them(redis_server: RedisServer) -> None:
    """A restarted Redis has no scripts: calls by SHA load them and run once, not twice."""
    import redis as redis_py

    app = Application(f"{redis_server.url}?prefix=noscript")

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    add.delay(0, 0)
    app.worker(concurrency=2).run(burst=True)
    redis_py.Redis.from_url(redis_server.url).script_flush()
    handles = add.map([(i, i) for i in range(50)])
    assert app.broker.size("default") == 50  # each once, although the first try hit NOSCRIPT
    redis_py.Redis.from_url(redis_server.url).script_flush()
    app.worker(concurrency=2).run(burst=True)
    assert [h.result(timeout=5) for h in handles] == [2 * i for i in range(50)]
    assert app.broker.size("default") == 0
