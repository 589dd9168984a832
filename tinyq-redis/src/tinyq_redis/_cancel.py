"""Cancel requests on Redis (:class:`CancelRequests`). ``cancel`` is one script
(cancel.lua); a leased job's request is a string key beside its queue,
``{prefix:queue}:cancel:<job id>`` holding its grace ("" for none), expiring by itself; the
worker reads the requests of all its held jobs of a queue with one MGET (one slot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tinyq_core.plugin import CancelRequests, CancelState, Result

from ._connection import translate_errors
from ._keys import GROUP, Keys, text
from ._scripts import CANCEL

T = TypeVar("T")


def cancel_key(keys: Keys, job_id: str) -> str:
    """The request's key: in the queue's hash tag, beside its jobs."""
    return f"{keys.stream.removesuffix(':stream')}:cancel:{job_id}"


class RedisCancel(CancelRequests):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str

        def keys(self, queue: str) -> Keys: ...

        def _with_group(self, queue: str, call: Callable[[], T]) -> T: ...

    def cancel(
        self,
        job_id: str,
        queue: str,
        *,
        grace: float | None,
        ttl: float,
        result: Result | None = None,
        result_ttl: float = 0.0,
    ) -> CancelState:
        keys = self.keys(queue)
        script_keys = (keys.stream, keys.jobs, keys.delayed, keys.payloads, keys.recovered,
                       cancel_key(keys, job_id), keys.result(job_id))
        args = (GROUP, job_id, "" if grace is None else repr(float(grace)),
                max(1, int(ttl * 1000)), max(1, int(result_ttl * 1000)),
                "0" if result is None else "1", b"" if result is None else result.body)
        # XPENDING needs the queue's group (made again if the server lost its data).
        state = text(self._with_group(queue, lambda: CANCEL(self.client, script_keys, args)))
        assert state in ("removed", "flagged", "absent"), state
        return state  # type: ignore[return-value]

    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> dict[str, float | None]:
        if not job_ids:
            return {}
        keys = self.keys(queue)
        with translate_errors(self.where):
            values = self.client.mget([cancel_key(keys, job_id) for job_id in job_ids])
        return {job_id: (float(value) if value else None)
                for job_id, value in zip(job_ids, values, strict=True) if value is not None}

    def forget_cancel_request(self, queue: str, job_id: str) -> None:
        with translate_errors(self.where):
            self.client.delete(cancel_key(self.keys(queue), job_id))
