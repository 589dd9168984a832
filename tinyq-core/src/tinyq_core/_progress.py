"""A running job's progress: written by the job (``current_job().set_progress``), read by a
producer (``handle.progress()``), kept by the result backend beside the job's result."""

from __future__ import annotations

from typing import Any

from ._codec import Codec
from ._current import MAX_PROGRESS_SIZE
from ._errors import BadMessage, ConfigurationError
from ._interfaces import ResultBackend


class ProgressStore:
    """Encodes, bounds and stores progress in ``results`` for ``ttl`` seconds; reads it."""

    def __init__(self, codec: Codec, results: ResultBackend, ttl: float) -> None:
        self._codec, self._results, self._ttl = codec, results, ttl

    def write(self, job_id: str, queue: str, value: Any) -> None:
        self.store(job_id, queue, self.encode(job_id, value))

    def encode(self, job_id: str, value: Any) -> bytes:
        """``value`` encoded for the backend; TypeError or ValueError if it cannot be."""
        try:
            body = self._codec.encode_progress(job_id, value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"progress must be a number or a dict that JSON can encode: "
                            f"{exc}") from None
        if len(body) > MAX_PROGRESS_SIZE:
            raise ValueError(f"progress of {len(body):,} bytes encoded is over the limit of "
                             f"{MAX_PROGRESS_SIZE:,}: report a summary (counts, a percentage), "
                             "not the data")
        return body

    def store(self, job_id: str, queue: str, body: bytes) -> None:
        try:
            self._results.store_progress(job_id, queue, body, self._ttl)
        except NotImplementedError:
            raise self._unsupported() from None

    def read(self, job_id: str, queue: str) -> Any:
        """The latest progress of ``job_id``, or None when it has reported none (yet)."""
        try:
            body = self._results.progress(job_id, queue)
        except NotImplementedError:
            raise self._unsupported() from None
        return self.decode(job_id, body)

    def decode(self, job_id: str, body: bytes | None) -> Any:
        """The progress stored as ``body`` (None: none reported)."""
        if body is None:
            return None
        try:
            return self._codec.decode_progress(job_id, body)
        except BadMessage as exc:
            raise BadMessage(f"job {job_id}: {exc.reason}") from None

    def _unsupported(self) -> ConfigurationError:
        return ConfigurationError(
            f"the result backend {type(self._results).__name__} keeps no job progress "
            "(store_progress/progress are not implemented): use the memory, Redis or SQLite "
            "backend, or implement them")
