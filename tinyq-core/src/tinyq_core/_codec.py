"""Jobs and results to bytes and back: serialization plus optional HMAC-SHA256 signing.

A signed body is ``tqs1:<hex digest>:<payload>``. A worker with keys verifies the digest before
anything is deserialised, so a tampered or unsigned message never reaches the serializer.

A job's outcome travels as the result envelope :class:`Outcome`, written by the worker and read
by job handles; this module is its only owner. On the wire it is ``{"ok": true, "value": v}``
or ``{"ok": false, "type": ..., "error": ..., "traceback": ...}``.
"""

from __future__ import annotations

import hashlib
import hmac
import traceback as tb
from collections.abc import Sequence
from typing import Any

import attrs

from ._errors import BadMessage, JobFailed, SerializationError, describe_exception
from ._interfaces import Serializer
from ._types import Job, Result

_PREFIX = b"tqs1:"
_DIGEST_LEN = 64  # hex characters of a SHA-256 digest


def _keys(secret_key: str | bytes | Sequence[str | bytes] | None) -> list[bytes]:
    if secret_key is None:
        return []
    items = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    return [k.encode() if isinstance(k, str) else bytes(k) for k in items]


@attrs.frozen
class Outcome:
    """How a job ended: ``ok`` with its return ``value``, or a failure with the exception's
    ``type`` name, ``error`` (``"Type: message"``) and remote ``traceback`` text."""

    ok: bool
    value: Any = None
    type: str = ""
    error: str = ""
    traceback: str = ""

    @classmethod
    def success(cls, value: Any) -> Outcome:
        return cls(True, value)

    @classmethod
    def failure(cls, exc_type: str, error: str, traceback: str = "") -> Outcome:
        return cls(False, None, exc_type, error, traceback)

    @classmethod
    def of_exception(cls, exc: BaseException) -> Outcome:
        text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        return cls.failure(type(exc).__name__, describe_exception(exc), text)

    def unwrap(self) -> Any:
        """The value, or :class:`JobFailed` carrying the failure."""
        if self.ok:
            return self.value
        raise JobFailed(self.error or "job failed", exc_type=self.type,
                        traceback=self.traceback)


class Codec:
    """Encodes and decodes message and result bodies for one application."""

    def __init__(
        self,
        serializer: Serializer,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
    ) -> None:
        self.serializer = serializer
        self._keys = _keys(secret_key)

    @property
    def signs(self) -> bool:
        return bool(self._keys)

    def _seal(self, payload: bytes) -> bytes:
        if not self._keys:
            return payload
        digest = hmac.new(self._keys[0], payload, hashlib.sha256).hexdigest().encode()
        return _PREFIX + digest + b":" + payload

    def _open(self, body: bytes) -> bytes:
        signed = body.startswith(_PREFIX)
        if not self._keys:
            if signed:
                raise BadMessage("message is signed but this application has no secret_key")
            return body
        if not signed:
            raise BadMessage("message is not signed (a secret_key is configured)")
        start = len(_PREFIX)
        digest, payload = body[start : start + _DIGEST_LEN], body[start + _DIGEST_LEN + 1 :]
        for key in self._keys:
            expected = hmac.new(key, payload, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, digest):
                return payload
        raise BadMessage("bad signature: the message was tampered with or signed with another key")

    def encode(self, value: Any) -> bytes:
        return self._seal(self.serializer.dumps(value))

    def decode(self, body: bytes) -> Any:
        try:
            return self.serializer.loads(self._open(body))
        except SerializationError as exc:
            raise BadMessage(f"undecodable ({self.serializer.name}): {exc}") from None

    # -- results -----------------------------------------------------------------------------

    def encode_result(self, job_id: str, queue: str, outcome: Outcome) -> Result:
        """The stored form of ``outcome``; a return value the serializer cannot encode
        becomes a failure that says so."""
        if outcome.ok:
            try:
                return Result(job_id, self.encode({"ok": True, "value": outcome.value}), queue)
            except SerializationError as exc:
                outcome = Outcome.failure("SerializationError",
                                          f"SerializationError: the return value: {exc}")
        envelope = {"ok": False, "type": outcome.type, "error": outcome.error,
                    "traceback": outcome.traceback}
        return Result(job_id, self.encode(envelope), queue, ok=False)

    def decode_result(self, body: bytes) -> Outcome:
        """The outcome in a stored result; an unreadable one is a failure that says why."""
        try:
            envelope = self.decode(body)
        except BadMessage as exc:
            return Outcome.failure("BadMessage", f"unreadable result: {exc.reason}")
        if not isinstance(envelope, dict):
            return Outcome.success(envelope)
        if envelope.get("ok"):
            return Outcome.success(envelope.get("value"))
        return Outcome.failure(str(envelope.get("type", "")),
                               str(envelope.get("error", "job failed")),
                               str(envelope.get("traceback", "")))

    # -- jobs --------------------------------------------------------------------------------

    def encode_job(self, job: Job) -> bytes:
        # args as a list: decode_job makes it a tuple again, so it needs no type tag.
        envelope: dict[str, Any] = {"id": job.id, "task": job.task_name, "args": list(job.args),
                                    "kwargs": job.kwargs}
        if job.retries:
            envelope["retries"] = job.retries
        if job.eta is not None:
            envelope["eta"] = job.eta
        return self.encode(envelope)

    def decode_job(self, body: bytes, queue: str) -> Job:
        envelope = self.decode(body)
        if not isinstance(envelope, dict):
            raise BadMessage(f"malformed: expected an object, got {type(envelope).__name__}")
        try:
            job_id, name = envelope["id"], envelope["task"]
            args, kwargs = envelope.get("args", ()), envelope.get("kwargs", {})
            retries, eta = envelope.get("retries", 0), envelope.get("eta")
        except KeyError as exc:
            raise BadMessage(f"malformed: missing field {exc.args[0]!r}") from None
        # The common case in one cheap test; the field-by-field search only for the reason.
        if not (
            type(job_id) is str
            and type(name) is str
            and type(args) in (list, tuple)
            and type(kwargs) is dict
            and type(retries) is int
            and (eta is None or type(eta) in (float, int))
        ):
            _reject_fields(job_id, name, args, kwargs, retries, eta)
        if kwargs and not all(type(k) is str for k in kwargs):
            raise BadMessage("malformed: field 'kwargs' has a key that is not a string")
        return Job(id=job_id, task_name=name, args=tuple(args), kwargs=kwargs, queue=queue,
                   retries=retries, eta=eta)


def _reject_fields(*values: Any) -> None:
    kinds = ((str,), (str,), (list, tuple), (dict,), (int,), (float, int, type(None)))
    names = ("id", "task", "args", "kwargs", "retries", "eta")
    for name, value, kind in zip(names, values, kinds, strict=True):
        if type(value) not in kind:
            raise BadMessage(f"malformed: field {name!r} has type {type(value).__name__}")
