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
from ._interfaces import Serializer

_TAG = "__tq__"
_TAG_BYTES = b'"__tq__"'
_PLAIN = (str, int, float, bool, type(None))


def _path(path: str) -> str:
    return path or "the value"


def _to_json(value: Any, path: str) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [_to_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind is dict:
        if _TAG not in value and all(type(k) is str for k in value):
            return {k: _to_json(v, f"{path}[{k!r}]") for k, v in value.items()}
        return {_TAG: "dict", "v": [[_to_json(k, path), _to_json(v, f"{path}[{k!r}]")]
                                      for k, v in value.items()]}
    if kind is tuple:
        return {_TAG: "tuple", "v": [_to_json(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    encode = _ENCODERS.get(kind)
    if encode is None:
        raise SerializationError(
            f"{_path(path)} of type {kind.__name__} cannot be encoded by the 'json' serializer; "
            "pass plain data (str, int, float, bool, None, list, dict, tuple, set, frozenset, "
            "bytes, datetime, date, time, timedelta, Decimal, UUID) or use "
            "Application(..., serializer='cloudpickle')"
        )
    tag, data = encode(value, path)
    return {_TAG: tag, "v": data}


_ENCODERS: dict[type, Callable[[Any, str], tuple[str, Any]]] = {
    set: lambda v, p: ("set", [_to_json(x, p) for x in v]),
    frozenset: lambda v, p: ("frozenset", [_to_json(x, p) for x in v]),
    bytes: lambda v, p: ("bytes", base64.b64encode(v).decode("ascii")),
    dt.datetime: lambda v, p: ("datetime", v.isoformat()),
    dt.date: lambda v, p: ("date", v.isoformat()),
    dt.time: lambda v, p: ("time", v.isoformat()),
    dt.timedelta: lambda v, p: ("timedelta", [v.days, v.seconds, v.microseconds]),
    decimal.Decimal: lambda v, p: ("decimal", str(v)),
    uuid.UUID: lambda v, p: ("uuid", str(v)),
}

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
            return json.dumps(
                _to_json(value, ""), separators=(",", ":"), ensure_ascii=False, allow_nan=True
            ).encode()
        except RecursionError as exc:
            raise SerializationError("the value is nested too deeply for 'json'") from exc

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
