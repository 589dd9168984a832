"""The worker's event loop: one thread that runs every ``async def`` job of the worker
process concurrently, up to ``async_concurrency`` at a time, beside the sync threads.

An async job is one task on this loop: it starts, runs and concludes through the same
JobRunner steps as a sync job (begin, conclude), so outcomes, hooks and logs are the same.
Nothing tinyq does blocks the loop for long: jobs start at most START_BATCH per iteration,
and settling (result encoding, outcome hooks, the outbox and its sends) and progress writes
are done by one I/O thread, in order.

Timeouts and cancels end the job's coroutine by cancelling its task (never an exception
raised into the loop thread, which would land in whichever coroutine runs): its ``finally:``
runs, and the outcome is JobTimeout or Cancelled as for a sync job (jobtasks.py). A cold
stop cancels every task (their jobs were given back already); the loop is then stopped and
its thread ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .._current import job_running
from .._lifecycle import Entered, Hooks
from .._progress import ProgressStore
from .._runtime_interfaces import Executor
from .held import HeldJobs, Work
from .jobtasks import job_task_factory, run_job_task
from .loopio import LoopIo
from .outbox import Outbox
from .runner import JobRunner

logger = logging.getLogger("tinyq.worker")

DEFAULT_ASYNC_CONCURRENCY = 100
START_BATCH = 32  # jobs started per loop iteration: a big batch must not stall the loop
STOP_WAIT = 5.0  # seconds cancelled tasks get to end before the loop stops regardless


class AsyncRunner:
    """Runs async jobs on its own event loop, ``slots`` at a time; more wait, unstarted and
    in order, for a slot (they were reserved in a batch that also had room for sync jobs).
    ``run`` is the loop thread's target; ``stop`` ends it from any thread."""

    def __init__(self, runner: JobRunner, held: HeldJobs, outbox: Outbox, hooks: Hooks,
                 progress: ProgressStore | None, slots: int) -> None:
        self._held, self._hooks, self._slots = held, hooks, slots
        self._progress = progress
        # One thread for the loop's blocking calls: outbox sends and progress writes, in order.
        self._io = LoopIo()
        self._runner = runner.for_loop(functools.partial(self._submit_io, outbox.flush_quietly),
                                       None if progress is None else self._store_progress)
        self.loop = asyncio.new_event_loop()
        self.loop.set_task_factory(job_task_factory)
        self._lock = threading.Lock()
        self._waiting: collections.deque[Work] = collections.deque()
        self._running = 0  # jobs given a slot (started on the loop, or about to)
        self._ready: collections.deque[Work] = collections.deque()  # given a slot, to start
        self._starting = False  # a _start_ready call is scheduled
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- from the fetcher and the worker's threads --------------------------------------

    def submit(self, work: Work) -> None:
        with self._lock:
            if self._running >= self._slots:
                self._waiting.append(work)
                return
            self._running += 1
            self._ready.append(work)
            if self._starting:
                return
            self._starting = True
        self.loop.call_soon_threadsafe(self._start_ready)

    def take_pending(self) -> list[Work]:
        """The jobs not started yet: those waiting for a slot, and those given one that the
        loop has not started (their slots are freed)."""
        with self._lock:
            items = [*self._ready, *self._waiting]
            self._running -= len(self._ready)
            self._ready.clear()
            self._waiting.clear()
            return items

    def stop(self) -> None:
        """Cancel whatever still runs (a cold stop gave its job back) and end the loop."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._waiting.clear()
        if not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._cancel_all)
            except RuntimeError:  # closed meanwhile
                pass

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self._io.close()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    # -- on the loop ---------------------------------------------------------------------

    def _start_ready(self) -> None:
        with self._lock:
            batch = [self._ready.popleft() for _ in range(min(START_BATCH, len(self._ready)))]
            self._starting = bool(self._ready)
        for work in batch:
            self._start(work)
        if self._starting:  # the rest after whatever else is ready to run
            self.loop.call_soon(self._start_ready)

    def _start(self, work: Work) -> None:
        if self._stopping:
            return
        task = self.loop.create_task(self._job(work))
        self._tasks.add(task)
        # In a context of its own: the next job must not start inside this one's.
        task.add_done_callback(self._ended, context=contextvars.Context())

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        with self._lock:
            following = self._waiting.popleft() if self._waiting else None
            if following is None:
                self._running -= 1
        if following is not None:
            self._start(following)
        if self._stopping and not self._tasks:
            self.loop.stop()

    def _cancel_all(self) -> None:
        if not self._tasks:
            self.loop.stop()
            return
        for task in self._tasks:
            task.cancel()
        # A coroutine that swallows its cancellation must not keep the worker from exiting.
        self.loop.call_later(STOP_WAIT, self.loop.stop)

    async def _job(self, work: Work) -> None:
        runner = self._runner
        started = runner.begin(work)
        if started is None:
            self._submit_io(lambda: runner.release_limits(work))
            return
        value: Any = None
        error: BaseException | None = None
        with job_running(runner.running_job(work)):
            try:
                value = await self._call(work)
            except BaseException as exc:  # the job's outcome, whatever it is
                error = exc
            finally:
                self._held.leave_user_code(work, time.monotonic() - started)
        # Settling (encoding the result, hooks, logs, the outbox) off the loop: a thousand
        # jobs ending in one iteration would hold it up otherwise.
        def conclude() -> None:
            runner.conclude(work, value, error, started)
            runner.release_limits(work)

        if not self._submit_io(conclude):
            conclude()

    async def _call(self, work: Work) -> Any:
        job, task, hooks = work.job, work.task, self._hooks
        entered: Entered = []
        value: Any = None
        error: BaseException | None = None
        try:
            if hooks.run_job:  # the wrappers around the whole run, as for a sync job
                hooks.enter({"job": job}, entered)
            value = await run_job_task(task.fn(*self._runner.call_args(work), **job.kwargs),
                                       work.deadline,
                                       task.options.timeout,
                                       lambda stop: self._held.set_stopper(work, stop))
        except BaseException as exc:
            error = exc
        return hooks.leave(entered, value, error)

    def _submit_io(self, call: Callable[[], None]) -> bool:
        # False once closed: the worker's shutdown flushes the outbox itself.
        return self._io.submit(call)

    def _store_progress(self, job_id: str, queue: str, value: Any) -> None:
        assert self._progress is not None
        progress = self._progress
        body = progress.encode(job_id, value)  # a bad value raises in the job, at once

        def store() -> None:
            try:
                progress.store(job_id, queue, body)
            except Exception as exc:
                logger.warning("Could not store the progress of job %s: %s", job_id, exc)

        self._submit_io(store)


class SplitExecutor(Executor[Work]):
    """What the fetcher submits to: async jobs go to the event loop, the others to the
    worker's executor (its threads)."""

    def __init__(self, threads: Executor[Work], aloop: AsyncRunner) -> None:
        self._threads, self._aloop = threads, aloop

    def start(self, concurrency: int, run: Callable[[Work], None]) -> None:
        self._threads.start(concurrency, run)

    def submit(self, item: Work) -> None:
        if item.task.is_async:
            self._aloop.submit(item)
        else:
            self._threads.submit(item)

    def take_pending(self) -> list[Work]:
        return self._threads.take_pending() + self._aloop.take_pending()

    def shutdown(self, wait: bool) -> None:
        self._aloop.stop()
        self._threads.shutdown(wait)


def event_loop_for(tasks: dict[str, Any], held: HeldJobs, threads: Executor[Work],
                   slots: int, runner: JobRunner, outbox: Outbox, hooks: Hooks,
                   progress: ProgressStore | None) -> AsyncRunner | None:
    """The worker's event loop when it has async tasks to run (and threads: an inline
    executor runs async jobs one at a time, each on its thread's loop, coroutines.py)."""
    if threads.inline or not any(task.is_async for task in tasks.values()):
        return None
    held.async_slots = slots
    return AsyncRunner(runner, held, outbox, hooks, progress, slots)
