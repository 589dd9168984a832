"""Bad input at the producer: each a clear error at the call, and nothing half-enqueued."""

from __future__ import annotations

import logging
import math
import re
import threading

import pytest

from tinyq_core import (
    Application,
    ConfigurationError,
    EnqueueError,
    MessageTooLarge,
    PluginError,
    SerializationError,
)
from tinyq_memory import MemoryBroker, drain

from redis_server import RedisServer


def test_unserialisable_argument_in_a_map_enqueues_nothing(tinyq_app: Application) -> None:
    @tinyq_app.task()
    def f(x: object) -> None:
        return None

    with pytest.raises(SerializationError, match="argument 'x'"):
        f.map([(1,), (2,), (threading.Lock(),), (4,)])
    assert tinyq_app.broker.size("default") == 0


def test_a_map_the_broker_takes_part_of_names_its_jobs_and_retries_the_rest(
    tinyq_app: Application, tinyq_broker: MemoryBroker
) -> None:
    @tinyq_app.task()
    def f(x: int) -> int:
        return x * 10

    tinyq_broker.set_capacity(3)  # as Redis at maxmemory
    with pytest.raises(EnqueueError) as info:
        f.map(range(5), durable=True)
    err = info.value
    assert str(err).startswith("3 of 5 jobs enqueued: the memory broker is full")
    assert "retry() enqueues the other 2 under their job ids" in str(err)
    assert [h.status() for h in err.enqueued] == ["queued"] * 3
    assert [h.status() for h in err.not_enqueued] == ["unknown"] * 2
    assert err.enqueued_ids == [h.id for h in err.enqueued]
    assert drain(tinyq_app) == 3  # meanwhile the first three ran: the retry must not add them
    with pytest.raises(EnqueueError, match=r"^4 of 5 jobs enqueued"):
        tinyq_broker.set_capacity(1)
        err.retry()
    assert drain(tinyq_app) == 1
    tinyq_broker.set_capacity(None)
    handles = err.retry()
    assert drain(tinyq_app) == 1
    assert [h.result(0) for h in handles] == [0, 10, 20, 30, 40]


def test_map_with_job_ids(tinyq_app: Application, tinyq_broker: MemoryBroker) -> None:
    @tinyq_app.task()
    def f(x: int) -> int:
        return x

    ids = ["a", "b", "c"]
    tinyq_broker.set_capacity(2)
    with pytest.raises(EnqueueError, match=r"^2 of 3 jobs enqueued"):
        f.map([1, 2, 3], job_ids=ids)
    tinyq_broker.set_capacity(None)
    assert [h.id for h in f.map([1, 2, 3], job_ids=ids)] == ids  # the same call again
    assert drain(tinyq_app) == 3
    for bad in (["a"], "abc", ["a", "", "c"]):
        with pytest.raises(ValueError, match="needs as many job_ids"):
            f.map([1, 2, 3], job_ids=bad)


def test_a_refused_delay_can_be_retried(tinyq_app: Application, tinyq_broker: MemoryBroker) -> None:
    @tinyq_app.task()
    def f(x: int) -> int:
        return x

    tinyq_broker.set_capacity(0)
    with pytest.raises(EnqueueError, match=r"^0 of 1 job enqueued: the memory broker is full"):
        f.delay(1)
    tinyq_broker.set_capacity(None)
    with pytest.raises(EnqueueError) as info:
        tinyq_broker.set_capacity(0)
        f.apply_async((2,), job_id="two")
    tinyq_broker.set_capacity(None)
    assert [h.id for h in info.value.retry()] == ["two"]
    assert drain(tinyq_app) == 1


def test_payload_over_the_size_limit(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, max_message_size=1000)

    @app.task()
    def f(data: str) -> int:
        return len(data)

    with pytest.raises(MessageTooLarge) as info:
        f.map([("small",), ("x" * 2000,)])
    assert "max_message_size (1,000)" in str(info.value)
    assert "by reference" in str(info.value)
    assert tinyq_broker.size("default") == 0  # not even the small one
    h = f.delay("x" * 500)
    drain(app)
    assert h.result(0) == 500
    assert isinstance(info.value, SerializationError)


def test_the_size_limit_can_be_lifted(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, max_message_size=None)

    @app.task()
    def f(data: str) -> int:
        return len(data)

    h = f.delay("x" * (2 * 1024 * 1024))
    drain(app)
    assert h.result(0) == 2 * 1024 * 1024


def test_strict_queues_refuse_an_unknown_queue(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, queues=["reports"], strict_queues=True)

    @app.task(queue="emails")
    def send(to: str) -> None:
        return None

    send.delay("a@example.com")  # the task's own queue
    send.apply_async(args=("b",), queue="reports")  # declared
    send.apply_async(args=("c",), queue="default")
    with pytest.raises(ConfigurationError) as info:
        send.apply_async(args=("d",), queue="emials")
    assert "unknown queue 'emials'" in str(info.value)
    assert "default, emails, reports" in str(info.value)
    assert [tinyq_broker.size(q) for q in ("emails", "reports", "default", "emials")] == [
        1, 1, 1, 0,
    ]
    loose = Application(tinyq_broker)  # strict_queues is off by default

    @loose.task()
    def post(to: str) -> None:
        return None

    post.apply_async(args=("e",), queue="emials")  # not declared anywhere: taken all the same
    assert tinyq_broker.size("emials") == 1


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("localhost:6379", "has no scheme"),
        ("rabbit://guest@localhost", "unknown broker URI scheme 'rabbit'"),
        ("memory://?visibility_timeout=soon", "must be a number"),
        ("redis://?visiblity_timeout=1", "unknown option(s) in the Redis URI"),
    ],
)
def test_a_broker_uri_that_does_not_parse(uri: str, message: str) -> None:
    with pytest.raises((PluginError, ConfigurationError)) as info:
        Application(uri).broker  # noqa: B018
    assert message in str(info.value)


def test_cloudpickle_without_a_secret_key_warns_loudly_at_worker_start(
    tinyq_broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tinyq")
    Application(tinyq_broker, serializer="cloudpickle").worker().run(burst=True)
    warnings = [r for r in caplog.records if "SECURITY" in r.getMessage()]
    assert len(warnings) == 1
    assert "anyone who can write to the broker can run code" in warnings[0].getMessage()
    caplog.clear()
    Application(tinyq_broker, serializer="cloudpickle", secret_key="k").worker().run(burst=True)
    Application(tinyq_broker).worker().run(burst=True)
    assert not [r for r in caplog.records if "SECURITY" in r.getMessage()]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"countdown": math.inf}, "countdown must be a finite number of seconds, not inf"),
        ({"countdown": -math.inf}, "countdown must be a finite number of seconds, not -inf"),
        ({"countdown": math.nan}, "countdown must be a finite number of seconds, not nan"),
        ({"eta": math.inf}, "eta must be a finite Unix time, not inf"),
        ({"eta": math.nan}, "eta must be a finite Unix time, not nan"),
        ({"countdown": 1e300}, "puts the job past the year 9999"),
        ({"eta": 1e18}, "puts the job past the year 9999"),
    ],
)
def test_a_countdown_or_eta_that_is_no_time(
    tinyq_broker: MemoryBroker, when: dict[str, float], message: str
) -> None:
    app = Application(tinyq_broker)

    @app.task()
    def f() -> None:
        return None

    with pytest.raises(ValueError, match=re.escape(message)) as info:
        f.apply_async(**when)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert tinyq_broker.size("default") == 0
    assert f.apply_async(countdown=10 * 365 * 86400).status() == "scheduled"  # still fine


def test_an_infinite_countdown_on_redis_is_a_clear_error(redis_server: RedisServer) -> None:
    app = Application(f"{redis_server.url}?prefix=nocountdown")

    @app.task()
    def f() -> None:
        return None

    for countdown in (math.inf, math.nan, 1e300):
        with pytest.raises(ValueError, match="countdown"):
            f.apply_async(countdown=countdown)
    assert app.broker.size("default") == 0
