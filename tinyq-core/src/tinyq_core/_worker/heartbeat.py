"""The heartbeat: a worker process records itself in the broker's worker registry at start,
every ``interval`` seconds, at once when a warm shutdown begins (state "stopping"), and
removes itself when it stops. Its record expires ``3 * interval`` after it was written, so a
worker killed without a word disappears from ``tinyq info`` by itself."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence

from .._interfaces import WorkerRegistry
from .._registry import encode_worker, new_worker_id
from .._types import CurrentJob, WorkerInfo
from .._version import __version__
from .held import HeldJobs, Work
from .ladder import ShutdownLadder, Stage
from .outbox import Outbox

logger = logging.getLogger("tinyq.worker")

TTL_INTERVALS = 3  # a record outlives this many missed heartbeats


class Heartbeat:
    """Thread ``Heartbeat``: ends when the worker's ladder reaches DONE, removing the record.
    A failed beat is logged once, until one succeeds, and the next beat tries again. It does
    not touch the worker's BrokerHealth: the registry is a side channel, and a beat refused
    first (at maxmemory, say) must not take the place of the line that names the job outcomes
    kept unreported."""

    def __init__(
        self,
        registry: WorkerRegistry,
        interval: float,
        queues: Sequence[str],
        concurrency: int,
        held: HeldJobs,
        outbox: Outbox,
        ladder: ShutdownLadder,
    ) -> None:
        self._registry, self.interval = registry, interval
        self._queues, self._concurrency = tuple(queues), concurrency
        self._held, self._outbox = held, outbox
        self._ladder = ladder
        self._failing = False
        self.worker_id = new_worker_id()
        self.started_at = time.time()

    def info(self) -> WorkerInfo:
        """This worker now: counts, running jobs (with wall-clock start times), state."""
        now, clock = time.time(), time.monotonic()
        _, running, _ = self._held.snapshot()
        slots = self._held.async_slots
        jobs = tuple(sorted(
            (CurrentJob(id=w.job.id, task=w.job.task_name, queue=w.job.queue,
                        started_at=now - (clock - w.started))
             for w in running if w.started is not None),
            key=lambda j: (j.started_at, j.id)))
        return WorkerInfo(
            id=self.worker_id, host=socket.gethostname(), pid=os.getpid(),
            version=__version__, queues=self._queues, concurrency=self._concurrency,
            started_at=self.started_at, heartbeat_at=now, processed=self._outbox.processed,
            failed=self._outbox.failed,
            state="running" if self._ladder.running else "stopping", jobs=jobs,
            cancelled=self._outbox.cancelled, expired=self._outbox.expired,
            async_concurrency=slots,
            async_running=sum(1 for w in running if slots and on_event_loop(w)))

    def beat(self) -> None:
        try:
            self._registry.record_worker(self.worker_id, encode_worker(self.info()),
                                         self.interval * TTL_INTERVALS)
        except Exception as exc:  # an outage must not stop the worker: the next beat retries
            self._failed(exc)
        else:
            if self._failing:
                self._failing = False
                logger.info("Worker %s is recorded in the worker registry again", self.worker_id)

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            logger.warning("Could not record worker %s in the worker registry (tinyq info will "
                           "not list it until a beat succeeds): %s", self.worker_id, exc)

    def run(self) -> None:
        stage = self._ladder.stage
        while stage is not Stage.DONE:
            self.beat()
            # Wakes at once on a stop: "stopping" is written now, not at the next beat.
            stage = self._ladder.wait_for_change(stage, self.interval)
        try:
            self._registry.remove_worker(self.worker_id)
        except Exception as exc:  # the record expires by itself
            self._failed(exc)


def on_event_loop(work: Work) -> bool:
    """Run by the worker's event loop (when it has one), as SplitExecutor sends it (aloop.py):
    a limited async task keeps a thread."""
    return work.task.is_async and work.task.options.limits is None
