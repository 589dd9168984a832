"""Jobs and results to bytes and back: serialization plus optional HMAC-SHA256 signing.

A signed body is ``tqs2:<hex digest>:<payload>``. The digest covers more than the payload: what
the body is (a job or a result) and where it belongs (a job's id and queue, a result's job id),
so a genuine body copied under another job id or into another queue no longer verifies. A
worker with keys verifies the digest before anything is deserialised, so a tampered or unsigned
message never reaches the serializer. Bodies signed before the binding (``tqs1:``) are refused.

A job's outcome travels as the result envelope :class:`Outcome`, written by the worker and read
by job handles; this module is its only owner. On the wire it is ``{"ok": true, "value": v}``
or ``{"ok": false, "type": ..., "error": ..., "traceback": ...}``, plus ``"kind":
"cancelled"`` or ``"expired"`` for a job that was cancelled or expired (a reader that does
not know the field sees a failure of type ``Cancelled`` / ``Expired``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import traceback as tb
from collections.abc import Sequence
from typing import Any

import attrs

from ._errors import (
    BadMessage,
    JobCancelled,
    JobExpired,
    JobFailed,
    SerializationError,
    describe_exception,
)
from ._runtime_interfaces import Serializer
from ._types import Job, JobStatus, Result

_PREFIX = b"tqs2:"
_OLD_PREFIX = b"tqs1:"  # signed over the payload alone: refused, it binds no id or queue
_DIGEST_LEN = 64  # hex characters of a SHA-256 digest


def _context(kind: str, *names: str) -> bytes:
    """What a digest covers besides the payload: the body's kind and the names it belongs to,
    each length-prefixed, so no two (kind, names) give the same bytes."""
    parts = [kind.encode(), *(n.encode("utf-8", "surrogatepass") for n in names)]
    return b"".join(b"%d:%s" % (len(p), p) for p in parts)


class Unverified(BadMessage):
    """A body that failed verification: whatever it says (its job id included) is a claim."""


def _keys(secret_key: str | bytes | Sequence[str | bytes] | None) -> list[bytes]:
    if secret_key is None:
        return []
    items = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    return [k.encode() if isinstance(k, str) else bytes(k) for k in items]


@attrs.frozen
class Outcome:
    """How a job ended: ``ok`` with its return ``value``, or a failure with the exception's
    ``type`` name, ``error`` (``"Type: message"``) and remote ``traceback`` text. ``kind``
    tells a failure that is a cancellation (``"cancelled"``) or an expiry (``"expired"``)
    from one that raised (``""``)."""

    ok: bool
    value: Any = None
    type: str = ""
    error: str = ""
    traceback: str = ""
    kind: str = ""

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

    @classmethod
    def cancelled(cls, why: str, traceback: str = "") -> Outcome:
        return cls(False, None, "Cancelled", f"Cancelled: {why}", traceback, "cancelled")

    @classmethod
    def expired(cls, why: str) -> Outcome:
        return cls(False, None, "Expired", f"Expired: {why}", "", "expired")

    def status(self) -> JobStatus:
        """The status of a job with this outcome."""
        if self.ok:
            return "succeeded"
        return "cancelled" if self.kind == "cancelled" else (
            "expired" if self.kind == "expired" else "failed")

    def unwrap(self) -> Any:
        """The value, or :class:`JobFailed` carrying the failure (:class:`JobCancelled`,
        :class:`JobExpired` for those kinds)."""
        if self.ok:
            return self.value
        error = {"cancelled": JobCancelled, "expired": JobExpired}.get(self.kind, JobFailed)
        raise error(self.error or "job failed", exc_type=self.type, traceback=self.traceback)


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

    def _seal(self, payload: bytes, context: bytes) -> bytes:
        if not self._keys:
            return payload
        digest = hmac.new(self._keys[0], context + payload, hashlib.sha256).hexdigest()
        return _PREFIX + digest.encode() + b":" + payload

    def _open(self, body: bytes, context: bytes, mismatch: str) -> bytes:
        signed = body.startswith((_PREFIX, _OLD_PREFIX))
        if not self._keys:
            if signed:
                raise BadMessage("message is signed but this application has no secret_key")
            return body
        if not signed:
            raise Unverified("message is not signed (a secret_key is configured)")
        if body.startswith(_OLD_PREFIX):
            raise Unverified("bad signature: signed the tqs1 way (before job ids and queues "
                             "were signed too); enqueue it again")
        start = len(_PREFIX)
        digest, payload = body[start : start + _DIGEST_LEN], body[start + _DIGEST_LEN + 1 :]
        for key in self._keys:
            expected = hmac.new(key, context + payload, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, digest):
                return payload
        raise Unverified(f"bad signature: the message was tampered with, {mismatch}, or signed "
                         "with another key")

    def encode(self, value: Any, context: bytes = b"") -> bytes:
        """``value`` serialised and, with keys, signed over ``context`` and the payload."""
        return self._seal(self.serializer.dumps(value), context)

    def decode(self, body: bytes, context: bytes = b"", mismatch: str = "copied") -> Any:
        try:
            return self.serializer.loads(self._open(body, context, mismatch))
        except SerializationError as exc:
            raise BadMessage(f"undecodable ({self.serializer.name}): {exc}") from None

    # -- results -----------------------------------------------------------------------------

    def encode_result(self, job_id: str, queue: str, outcome: Outcome) -> Result:
        """The stored form of ``outcome``; a return value the serializer cannot encode
        becomes a failure that says so."""
        if outcome.ok:
            try:
                body = self.encode({"ok": True, "value": outcome.value},
                                   _context("result", job_id))
                return Result(job_id, body, queue)
            except SerializationError as exc:
                outcome = Outcome.failure("SerializationError",
                                          f"SerializationError: the return value: {exc}")
        envelope = {"ok": False, "type": outcome.type, "error": outcome.error,
                    "traceback": outcome.traceback}
        if outcome.kind:
            envelope["kind"] = outcome.kind
        return Result(job_id, self.encode(envelope, _context("result", job_id)), queue,
                      ok=False)

    def decode_result(self, body: bytes, job_id: str = "") -> Outcome:
        """The outcome in the stored result of job ``job_id``; an unreadable one (with keys:
        one signed for another job, copied to this job's key) is a failure that says why."""
        try:
            envelope = self.decode(body, _context("result", job_id),
                                   "signed for another job (a result copied to this key)")
        except BadMessage as exc:
            return Outcome.failure("BadMessage", f"unreadable result: {exc.reason}")
        if not isinstance(envelope, dict):
            return Outcome.success(envelope)
        if envelope.get("ok"):
            return Outcome.success(envelope.get("value"))
        kind = envelope.get("kind", "")
        return Outcome(False, None, str(envelope.get("type", "")),
                       str(envelope.get("error", "job failed")),
                       str(envelope.get("traceback", "")),
                       kind if kind in ("cancelled", "expired") else "")

    # -- progress ----------------------------------------------------------------------------

    def encode_progress(self, job_id: str, value: Any) -> bytes:
        """A running job's progress, as JSON whatever the serializer (it is a number or a
        small dict, read by any producer) and signed like a result."""
        return self._seal(json.dumps(value, allow_nan=False).encode(),
                          _context("progress", job_id))

    def decode_progress(self, job_id: str, body: bytes) -> Any:
        try:
            return json.loads(self._open(body, _context("progress", job_id),
                                         "signed for another job"))
        except ValueError as exc:
            raise BadMessage(f"unreadable progress: {exc}") from None

    # -- jobs --------------------------------------------------------------------------------

    def encode_job(self, job: Job) -> bytes:
        # args as a list: decode_job makes it a tuple again, so it needs no type tag.
        envelope: dict[str, Any] = {"id": job.id, "task": job.task_name, "args": list(job.args),
                                    "kwargs": job.kwargs}
        if job.retries:
            envelope["retries"] = job.retries
        if job.eta is not None:
            envelope["eta"] = job.eta
        if job.enqueued_at is not None:
            envelope["at"] = job.enqueued_at
        if job.headers:  # inside the signed payload: a header is as trusted as the arguments
            envelope["headers"] = job.headers
        if job.expires is not None:
            envelope["exp"] = job.expires
        if job.unique_key is not None:
            envelope["uk"] = job.unique_key
            if job.unique_for:
                envelope["uf"] = job.unique_for
        if job.workflow is not None:
            envelope["wf"] = job.workflow
        return self.encode(envelope, _context("job", job.id, job.queue))

    def decode_job(self, body: bytes, queue: str, job_id: str = "") -> Job:
        """The job in a message stored in ``queue`` under ``job_id``. With keys, the digest
        must cover that id and queue, else :class:`Unverified`; the message's own id must
        be ``job_id`` too."""
        stored_id = job_id
        envelope = self.decode(body, _context("job", stored_id, queue),
                               "copied under another job id or into another queue")
        if not isinstance(envelope, dict):
            raise BadMessage(f"malformed: expected an object, got {type(envelope).__name__}")
        try:
            job_id, name = envelope["id"], envelope["task"]
            args, kwargs = envelope.get("args", ()), envelope.get("kwargs", {})
            retries, eta = envelope.get("retries", 0), envelope.get("eta")
            at, headers = envelope.get("at"), envelope.get("headers", {})
            expires, unique_key = envelope.get("exp"), envelope.get("uk")
            unique_for, workflow = envelope.get("uf", 0.0), envelope.get("wf")
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
            and (at is None or type(at) in (float, int))
            and type(headers) is dict
            and (expires is None or type(expires) in (float, int))
            and (unique_key is None or type(unique_key) is str)
            and type(unique_for) in (float, int)
        ):
            _reject_fields(job_id, name, args, kwargs, retries, eta, at, headers, expires,
                           unique_key, unique_for)
        if self._keys and job_id != stored_id:  # a key holder's bug, not an attack
            raise BadMessage(f"malformed: it carries the id {job_id[:100]!r}, not the id it "
                             "is stored under")
        if kwargs and not all(type(k) is str for k in kwargs):
            raise BadMessage("malformed: field 'kwargs' has a key that is not a string")
        if headers and not all(type(k) is str and type(v) is str for k, v in headers.items()):
            raise BadMessage("malformed: field 'headers' has a key or value that is not a "
                             "string")
        if workflow is not None and type(workflow) is not dict:
            raise BadMessage(f"malformed: field 'wf' has type {type(workflow).__name__}")
        return Job(id=job_id, task_name=name, args=tuple(args), kwargs=kwargs, queue=queue,
                   retries=retries, eta=eta, enqueued_at=at, headers=headers,
                   expires=expires, unique_key=unique_key, unique_for=unique_for,
                   workflow=workflow)


def _reject_fields(*values: Any) -> None:
    maybe_time = (float, int, type(None))
    kinds = ((str,), (str,), (list, tuple), (dict,), (int,), maybe_time, maybe_time, (dict,),
             maybe_time, (str, type(None)), (float, int))
    names = ("id", "task", "args", "kwargs", "retries", "eta", "at", "headers", "exp", "uk",
             "uf")
    for name, value, kind in zip(names, values, kinds, strict=True):
        if type(value) not in kind:
            raise BadMessage(f"malformed: field {name!r} has type {type(value).__name__}")
