"""Helpers for testing tasks on the memory broker."""

from __future__ import annotations

from collections.abc import Sequence

from tinyq_core import Application

from ._broker import MemoryBroker
from ._clock import FakeClock


def drain(
    app: Application,
    queues: Sequence[str] | None = None,
    *,
    advance_clock: bool = True,
    max_rounds: int = 1000,
) -> int:
    """Run burst workers until ``queues`` (default: every queue of the app's tasks) are empty,
    one job at a time in this thread; return how many jobs ran.

    On a memory broker with a :class:`FakeClock`, delayed jobs (countdown, eta, retry backoff)
    are run too: the clock is moved to each one's due time in turn, so nothing sleeps.
    Periodic schedules do not tick here (the workers run without their scheduler)."""
    own = (task.options.queue for task in app.tasks.values())
    names = list(queues or dict.fromkeys(["default", *own]))
    broker = app.broker
    total = 0
    for _ in range(max_rounds):
        worker = app.worker(concurrency=1, queues=names, executor="inline", scheduler=False)
        worker.run(burst=True)
        total += worker.processed
        if not (advance_clock and isinstance(broker, MemoryBroker)):
            break
        if not isinstance(broker.clock, FakeClock):
            break
        due_in = broker.move_due(names)
        if due_in is None or not any(broker.size(q) for q in names):
            break
        broker.clock.advance(due_in)
    return total
