"""Jobs and results to bytes and back: serialization plus optional HMAC-SHA256 signing.

A signed body is ``tqs1:<hex digest>:<payload>``. A worker with keys verifies the digest before
anything is deserialised, so a tampered or unsigned message never reaches the serializer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from ._errors import BadMessage, SerializationError
from ._interfaces import Serializer
from ._types import Job

_PREFIX = b"tqs1:"
_DIGEST_LEN = 64  # hex characters of a SHA-256 digest


def _keys(secret_key: str | bytes | Sequence[str | bytes] | None) -> list[bytes]:
    if secret_key is None:
        return []
    items = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    return [k.encode() if isinstance(k, str) else bytes(k) for k in items]


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
