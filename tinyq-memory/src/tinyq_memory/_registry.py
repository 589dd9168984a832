"""The worker registry of the memory broker: the latest record of each worker with the time
it expires, on the broker's clock (so a fake clock expires them too). A mixin of
:class:`~tinyq_memory.MemoryBroker`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tinyq_core.plugin import WorkerRegistry

if TYPE_CHECKING:
    from ._clock import Clock


class MemoryRegistry(WorkerRegistry):
    if TYPE_CHECKING:  # provided by MemoryBroker
        _cond: threading.Condition
        clock: Clock

        def _check(self) -> None: ...

    _workers: dict[str, tuple[bytes, float]]  # worker id: (record, expiry time)

    def record_worker(self, worker_id: str, record: bytes, ttl: float) -> None:
        with self._cond:
            self._check()
            self._workers[worker_id] = (record, self.clock.time() + ttl)

    def remove_worker(self, worker_id: str) -> None:
        with self._cond:
            self._check()
            self._workers.pop(worker_id, None)

    def worker_records(self) -> list[bytes]:
        with self._cond:
            self._check()
            now = self.clock.time()
            for worker_id in [w for w, (_, expires) in self._workers.items() if expires <= now]:
                del self._workers[worker_id]
            return [record for record, _ in self._workers.values()]
