"""A worker running in a background thread, for tests that talk to it while it works."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tinyq_core import Application, Worker
from tinyq_memory import MemoryBroker

# Long enough for a warm stop: an idle worker notices it within one blocking read, and the
# tests' jobs finish within seconds.
JOIN_TIMEOUT = 10.0


@contextmanager
def running_worker(
    app: Application,
    *,
    burst: bool = False,
    cold: bool = False,
    join_timeout: float = JOIN_TIMEOUT,
    **worker_options: Any,
) -> Iterator[Worker]:
    """Run ``app.worker(**worker_options).run(burst=burst)`` in a thread during the block and
    yield the worker.

    Leaving the block stops it, warm or (``cold=True``) cold; a ``burst`` worker is left to
    empty its queues and stop by itself. The test then fails if the thread did not end within
    ``join_timeout`` seconds, if ``run()`` raised, or if it did not return what that stop
    promises: 0 after a warm stop or a burst, 1 after a cold stop."""
    worker = app.worker(**worker_options)
    ended: list[int | BaseException] = []

    def run() -> None:
        try:
            ended.append(worker.run(burst=burst))
        except BaseException as exc:  # to the test, not lost in this thread
            ended.append(exc)

    thread = threading.Thread(target=run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    except BaseException:
        # The test failed already: get the worker out of the way (cold: do not wait for
        # jobs) and let that failure be the one reported.
        _stop(worker, app, cold=True)
        thread.join(join_timeout)
        raise
    if not burst:
        _stop(worker, app, cold=cold)
    thread.join(join_timeout)
    if thread.is_alive():
        _stop(worker, app, cold=True)  # so that it does not run on into the next test
        thread.join(join_timeout)
        how = "its burst" if burst else ("a cold stop" if cold else "a warm stop")
        pytest.fail(f"the worker thread did not end within {join_timeout:g} s of {how}")
    [outcome] = ended
    if isinstance(outcome, BaseException):
        raise outcome
    expected = 1 if cold and not burst else 0
    assert outcome == expected, f"worker.run() returned {outcome}, not {expected}"


def _stop(worker: Worker, app: Application, cold: bool) -> None:
    worker.stop(cold=cold)
    if isinstance(app.broker, MemoryBroker):
        # An idle worker waits in a blocking reserve; this ends it, so that the worker sees
        # the stop now rather than when the read times out.
        app.broker.interrupt_reserves()
