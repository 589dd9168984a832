"""Serializers and message signing."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyq_core import Application, BadMessage, Job, Message, PluginError, SerializationError
from tinyq_core._codec import Codec
from tinyq_core._serializers import JSONSerializer
from tinyq_memory import MemoryBroker, drain

VALUES: list[Any] = [
    "text", 1, 2.5, True, None, [1, [2]], {"a": {"b": 1}},
    (1, 2, (3,)), {1, 2}, frozenset({3}), b"\x00\xff",
    dt.datetime(2026, 11, 29, 1, 2, 3, 4567, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 1),
    dt.date(2026, 11, 29), dt.time(1, 2, 3), dt.timedelta(days=1, seconds=2, microseconds=3),
    decimal.Decimal("1.10"), uuid.UUID(int=12345),
    {(1, 2): "tuple key", 3: "int key"}, {"__tq__": "a user key that looks like a tag"},
    [{"nested": (b"x", {dt.date(2020, 1, 1)})}],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_json_round_trips_each_type(value: Any) -> None:
    s = JSONSerializer()
    back = s.loads(s.dumps(value))
    assert back == value
    assert type(back) is type(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary()
    | st.floats(allow_nan=False) | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids() | st.datetimes() | st.dates(),
    lambda children: st.lists(children) | st.tuples(children, children)
    | st.dictionaries(st.text(), children) | st.frozensets(st.integers()),
    max_leaves=20,
)


@given(json_values)
def test_json_round_trips_anything_it_accepts(value: Any) -> None:
    s = JSONSerializer()
    assert s.loads(s.dumps(value)) == value


@given(st.binary())
def test_json_loads_of_random_bytes_raises_only_serialization_error(data: bytes) -> None:
    try:
        JSONSerializer().loads(data)
    except SerializationError:
        pass


def test_json_rejects_unknown_types_with_a_clear_message() -> None:
    with pytest.raises(SerializationError, match="type object cannot be encoded by the 'json'"):
        JSONSerializer().dumps({"a": [object()]})


@pytest.mark.parametrize(("value", "where"), [
    ({"a": [1, (2, {3, frozenset({object()})})]}, "['a'][1]"),  # in a set: no index after it
    ([{"k": {"deep": object()}}], "[0]['k']['deep'] of type object"),
    ((1, 2, Ellipsis), "[2] of type ellipsis"),
    ({object(): 1}, "the value of type object"),  # a key: the dict holding it
    (object(), "the value of type object"),
])
def test_json_names_where_the_value_it_cannot_encode_sits(value: object, where: str) -> None:
    with pytest.raises(SerializationError) as info:
        JSONSerializer().dumps(value)
    assert str(info.value).startswith(where)


def test_cloudpickle_handles_lambdas_and_closures(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, serializer="cloudpickle")
    k = 10

    @app.task()
    def apply(fn: Any, x: int) -> Any:
        return fn(x)

    h = apply.delay(lambda x: x + k, 5)
    drain(app)
    assert h.result(0) == 15


def test_cloudpickle_error_names_the_argument(tinyq_broker: MemoryBroker) -> None:
    import threading

    app = Application(tinyq_broker, serializer="cloudpickle")

    @app.task()
    def f(lock: Any) -> None:
        return None

    with pytest.raises(SerializationError, match=r"argument 'lock'.*cloudpickle"):
        f.delay(threading.Lock())


def test_unknown_serializer_is_a_clear_error() -> None:
    with pytest.raises(PluginError, match="unknown serializer 'yaml'"):
        Application("memory://", serializer="yaml")


# -- signing ---------------------------------------------------------------------------------


def test_signed_round_trip_and_rotation() -> None:
    old = Codec(JSONSerializer(), secret_key="old")
    rotated = Codec(JSONSerializer(), secret_key=["new", "old"])
    job = Job(id="1", task_name="t", args=(1,))
    assert rotated.decode_job(old.encode_job(job), "default", "1").args == (1,)
    body = rotated.encode_job(job)
    assert rotated.decode_job(body, "default", "1").id == "1"
    with pytest.raises(BadMessage, match="bad signature"):
        old.decode_job(body, "default", "1")  # signed with "new", which old does not know


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda b: b.replace(b"[1]", b"[2]"), "bad signature"),
        (lambda b: b.split(b":", 2)[2], "not signed"),
        (lambda b: b[:-1], "bad signature"),
    ],
)
def test_tampered_or_unsigned_messages_are_never_deserialised(tamper: Any, reason: str) -> None:
    calls = []

    class Spy(JSONSerializer):
        def loads(self, data: bytes) -> Any:
            calls.append(data)
            return super().loads(data)

    codec = Codec(Spy(), secret_key=b"k")
    body = codec.encode_job(Job(id="1", task_name="t", args=(1,)))
    with pytest.raises(BadMessage, match=reason):
        codec.decode_job(tamper(body), "default", "1")
    assert calls == []


def test_worker_dead_letters_a_message_signed_with_another_key(
    tinyq_broker: MemoryBroker,
) -> None:
    app = Application(tinyq_broker, secret_key="right")
    intruder = Application(tinyq_broker, secret_key="wrong")
    ran = []

    @app.task(name="t")
    def t() -> None:
        ran.append(1)

    intruder.send("t")
    tinyq_broker.enqueue([Message("unsigned", "default", b'{"id":"u","task":"t"}')])
    good = t.delay()
    drain(app)
    assert ran == [1]
    assert good.status() == "succeeded"
    reasons = sorted(d.reason for d in tinyq_broker.dead_letters("default"))
    assert len(reasons) == 2
    assert "bad signature" in reasons[0] and "not signed" in reasons[1]


def test_results_are_signed_too(tinyq_broker: MemoryBroker) -> None:
    app = Application(tinyq_broker, secret_key="k")

    @app.task()
    def f() -> int:
        return 1

    h = f.delay()
    drain(app)
    stored = tinyq_broker.result_backend().get(h.id, 0)
    assert stored is not None and stored.body.startswith(b"tqs2:")
    assert h.result(0) == 1
