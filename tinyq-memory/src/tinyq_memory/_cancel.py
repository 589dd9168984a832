"""Cancel requests of the memory broker (:class:`CancelRequests`). A mixin of
:class:`~tinyq_memory.MemoryBroker`: it works on the broker's state, under its condition."""

from __future__ import annotations

import collections
import heapq
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tinyq_core.plugin import CancelRequests, CancelState, JobStatus, Message, Result

if TYPE_CHECKING:
    from ._clock import Clock
    from ._results import MemoryResultBackend


class MemoryCancel(CancelRequests):
    if TYPE_CHECKING:  # provided by MemoryBroker
        _cond: threading.Condition
        _ready: dict[str, collections.deque[tuple[int, Message, int]]]
        _delayed: list[tuple[float, int, Message]]
        _status: dict[tuple[str, str], JobStatus]
        _results: MemoryResultBackend
        clock: Clock

        def _check(self) -> None: ...

    # (queue, job id) -> (grace, expiry time by the broker's clock)
    _cancel_requests: dict[tuple[str, str], tuple[float | None, float]]

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
        with self._cond:
            self._check()
            status = self._status.get((queue, job_id))
            if status == "started":
                self._cancel_requests[queue, job_id] = (grace, self.clock.time() + ttl)
                return "flagged"
            if status == "queued":
                ready = self._ready[queue]
                kept = [item for item in ready if item[1].id != job_id]
                ready.clear()
                ready.extend(kept)
            elif status == "scheduled":
                self._delayed = [item for item in self._delayed
                                 if not (item[2].queue == queue and item[2].id == job_id)]
                heapq.heapify(self._delayed)
            else:
                return "absent"
            del self._status[queue, job_id]
            if result is not None:
                self._results.store([result], result_ttl)
            return "removed"

    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> dict[str, float | None]:
        with self._cond:
            self._check()
            requests, now = self._cancel_requests, self.clock.time()
            found: dict[str, float | None] = {}
            for job_id in job_ids:
                request = requests.get((queue, job_id))
                if request is not None and request[1] > now:
                    found[job_id] = request[0]
            return found

    def forget_cancel_request(self, queue: str, job_id: str) -> None:
        with self._cond:
            self._check()
            self._cancel_requests.pop((queue, job_id), None)
