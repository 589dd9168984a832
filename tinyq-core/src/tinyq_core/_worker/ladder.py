"""The shutdown ladder: RUNNING -> WARM -> COLD -> DONE, one state on the worker's Condition.

WARM: take no more jobs, give back the prefetched ones, let running jobs finish. COLD: give
back the running ones too. DONE: the worker returned; helper threads end. A stage is only
ever climbed, never left, and every waiter on the Condition sees the change at once.
"""

from __future__ import annotations

import enum
import threading


class Stage(enum.IntEnum):
    RUNNING = 0
    WARM = 1
    COLD = 2
    DONE = 3


class ShutdownLadder:
    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self.stage = Stage.RUNNING
        # Set at DONE: helper threads wait on it without taking part in the Condition.
        self.done = threading.Event()

    def climb(self, stage: Stage) -> None:
        """Go up to ``stage`` (no-op when already there or higher) and wake every waiter."""
        with self._cond:
            if stage > self.stage:
                self.stage = stage
                if stage is Stage.DONE:
                    self.done.set()
            self._cond.notify_all()

    def next_step(self) -> Stage:
        """One more stop request (a signal): RUNNING -> WARM, anything later -> COLD."""
        self.climb(Stage.WARM if self.stage is Stage.RUNNING else Stage.COLD)
        return self.stage

    @property
    def running(self) -> bool:
        return self.stage is Stage.RUNNING

    @property
    def cold(self) -> bool:
        return self.stage >= Stage.COLD

    def wait_for_change(self, seen: Stage, timeout: float | None) -> Stage:
        """Sleep up to ``timeout`` seconds, returning at once when the stage is no longer
        ``seen``; the stage then."""
        with self._cond:
            self._cond.wait_for(lambda: self.stage is not seen, timeout)
            return self.stage

    def wait_for_stop(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds, returning at once when a stop is asked for;
        True if one was."""
        with self._cond:
            return self._cond.wait_for(lambda: self.stage is not Stage.RUNNING, timeout)
