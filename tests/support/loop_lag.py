"""A loop-lag probe: a task on the event loop measuring how late it wakes up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

TICK = 0.005  # seconds between the probe's wake-ups


class LoopLagProbe:
    """``async with LoopLagProbe() as probe:`` ... ``probe.worst``: the longest the loop was
    kept from waking the probe (its sleep's overrun), in seconds, over the block."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(TICK)
            self.worst = max(self.worst, time.monotonic() - start - TICK)
            self.ticks += 1

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)  # started before the code under test runs
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        assert self._task is not None
        await asyncio.sleep(TICK * 2)  # a last look after the code under test
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


async def lag_of(body: Callable[[], Awaitable[None]], bound: float = 0.05,
                 attempts: int = 3) -> list[float]:
    """The probe's worst delay during ``body()``, run again (up to ``attempts`` times) while
    it is over ``bound``: a loaded machine may deschedule the process now and then, while
    code that blocks the loop does so every time."""
    worsts: list[float] = []
    while len(worsts) < attempts and (not worsts or worsts[-1] >= bound):
        async with LoopLagProbe() as probe:
            await body()
        assert probe.ticks > 10, "the probe hardly ran: its worst delay would mean nothing"
        worsts.append(probe.worst)
    return worsts
