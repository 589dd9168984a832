"""The built-in serializers: ``json`` (the default, safe) and ``cloudpickle`` (opt-in, anything).

JSON keeps the types users pass most often: besides what JSON has, tuple, set, frozenset, bytes,
datetime, date, time, timedelta, Decimal and UUID round-trip through tagged objects
(``{"__tq__": "tuple", "v": [...]}``). A dict that itself holds the tag key, or has keys that are
not strings, is stored as tagged pairs so nothing is ever misread.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

import cloudpickle

from ._errors import SerializationError
from ._runtime_interfaces import Serializer

_TAG = "__tq__"
_TAG_BYTES = b'"__tq__"'
_PLAIN = (str, int, float, bool, type(None))


class _Unencodable(Exception):
    """A value of a type the json serializer has no encoding for (turned into a
    SerializationError that names where it sits)."""


def _to_json(value: Any) -> Any:
    # The hot path of every enqueue: no bookkeeping of where we are; _where() finds the place
    # of a bad value only when there is one.
    kind = type(value)
    if kind in _PLAIN:
        return value
    # Plain items are taken as they are, without a call each.
    if kind is list:
        return [v if type(v) in _PLAIN else _to_json(v) for v in value]
    if kind is dict:
        if _TAG not in value and all(type(k) is str for k in value):
            return {k: v if type(v) in _PLAIN else _to_json(v) for k, v in value.items()}
        return {_TAG: "dict", "v": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if kind is tuple:
        return {_TAG: "tuple", "v": [_to_json(v) for v in value]}
    encode = _ENCODERS.get(kind)
    if encode is None:
        raise _Unencodable(value)
    return {_TAG: _TAG_OF[kind], "v": encode(value)}


def _where(value: Any, bad: Any, path: str = "") -> str | None:
    """The path of ``bad`` inside ``value`` (``[0]['key']``...), if it is there."""
    if value is bad:
        return path
    if type(value) is dict:
        if any(key is bad for key in value):
            return path
        items: Any = value.items()
    elif type(value) in (list, tuple):
        items = enumerate(value)
    elif type(value) in (set, frozenset):
        items = ((None, v) for v in value)
    else:
        return None
    for key, item in items:
        step = "" if key is None else f"[{key!r}]" if type(value) is dict else f"[{key}]"
        found = _where(item, bad, path + step)
        if found is not None:
            return found
    return None


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    set: lambda v: [_to_json(x) for x in v],
    frozenset: lambda v: [_to_json(x) for x in v],
    bytes: lambda v: base64.b64encode(v).decode("ascii"),
    dt.datetime: lambda v: v.isoformat(),
    dt.date: lambda v: v.isoformat(),
    dt.time: lambda v: v.isoformat(),
    dt.timedelta: lambda v: [v.days, v.seconds, v.microseconds],
    decimal.Decimal: str,
    uuid.UUID: str,
}
_TAG_OF = {
    set: "set", frozenset: "frozenset", bytes: "bytes", dt.datetime: "datetime",
    dt.date: "date", dt.time: "time", dt.timedelta: "timedelta", decimal.Decimal: "decimal",
    uuid.UUID: "uuid",
}
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True)

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "dict": dict,
    "bytes": lambda v: base64.b64decode(v),
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
}


def _object_hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag is None:
        return obj
    decode = _DECODERS.get(tag)
    if decode is None:
        raise SerializationError(f"unknown json type tag {tag!r}")
    return decode(obj["v"])


class JSONSerializer(Serializer):
    """Safe and readable; the default."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        try:
            return _ENCODER.encode(_to_json(value)).encode()
        except RecursionError as exc:
            raise SerializationError("the value is nested too deeply for 'json'") from exc
        except _Unencodable as exc:
            bad = exc.args[0]
            where = _where(value, bad) or ""
            raise SerializationError(
                f"{where or 'the value'} of type {type(bad).__name__} cannot be encoded by the "
                "'json' serializer; pass plain data (str, int, float, bool, None, list, dict, "
                "tuple, set, frozenset, bytes, datetime, date, time, timedelta, Decimal, UUID) "
                "or use Application(..., serializer='cloudpickle')"
            ) from None

    def loads(self, data: bytes) -> Any:
        try:
            if _TAG_BYTES not in data:  # nothing tagged: the C decoder alone is much faster
                return json.loads(data)
            return json.loads(data, object_hook=_object_hook)
        except SerializationError:
            raise
        except Exception as exc:  # any of them: a bad tagged value is bad input, not a crash
            raise SerializationError(f"not valid json: {type(exc).__name__}: {exc}") from exc


class CloudpickleSerializer(Serializer):
    """Lambdas, closures and arbitrary objects. Decoding runs code: sign messages with
    ``secret_key`` when anyone else can write to the broker."""

    name = "cloudpickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return bytes(cloudpickle.dumps(value))
        except Exception as exc:
            raise SerializationError(
                f"the value cannot be encoded by the 'cloudpickle' serializer: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return cloudpickle.loads(data)
        except Exception as exc:
            raise SerializationError(f"not a valid cloudpickle payload: {exc}") from exc
