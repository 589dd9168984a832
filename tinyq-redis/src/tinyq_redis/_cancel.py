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


def cancel_call(
    keys: Keys, job_id: str, grace: float | None, ttl: float, result: Result | None,
    result_ttl: float,
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The keys and arguments of cancel.lua (the blocking broker's and the async tier's)."""
    script_keys = (keys.stream, keys.jobs, keys.delayed, keys.payloads, keys.recovered,
                   cancel_key(keys, job_id), keys.result(job_id))
    args = (GROUP, job_id, "" if grace is None else repr(float(grace)),
            max(1, int(ttl * 1000)), max(1, int(result_ttl * 1000)),
            "0" if result is None else "1", b"" if result is None else result.body)
    return script_keys, args


def cancel_state(reply: Any) -> CancelState:
    state = text(reply)
    assert state in ("removed", "flagged", "absent"), state
    return state  # type: ignore[return-value]


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
        script_keys, args = cancel_call(self.keys(queue), job_id, grace, ttl, result,
                                        result_ttl)
        # XPENDING needs the queue's group (made again if the server lost its data).
        return cancel_state(
            self._with_group(queue, lambda: CANCEL(self.client, script_keys, args)))

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
