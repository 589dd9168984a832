"""The worker's event loop is never blocked long by tinyq (issue 19): tinyq's own share of
the loop during a drain, the wall-clock lag loosely, and the batched hand-over of the loop's
blocking calls to its I/O thread."""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
import time
from pathlib import Path
from typing import Any

from tinyq_core import Application
from tinyq_core._worker.loopio import LoopIo
from tinyq_memory import MemoryBroker

from support.loop_share import tinyq_loop_share
from support.project import AppProject


def test_tinyq_never_blocks_the_loop_long_during_a_drain() -> None:
    """The issue's property: tinyq keeps the loop less than 10 ms at a time during a drain of
    1,000 jobs. Asserted tightly on tinyq's own share (CPU time of the loop thread in tinyq's
    callbacks, per loop iteration: loop_share.py), which a loaded machine does not inflate;
    the wall-clock lag, which it does, is bounded loosely."""
    app = Application(MemoryBroker())
    lags: list[float] = []

    @app.task(name="t.probe")
    async def probe() -> None:
        for _ in range(400):  # 2 s of 5 ms wake-ups
            before = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - before - 0.005)

    @app.task(name="t.nap")
    async def nap() -> None:
        await asyncio.sleep(0.2)

    gc.freeze()  # as `tinyq worker` does once started (docs/asyncio.md, loop lag)
    try:
        probe.delay()
        for _ in range(1000):
            nap.delay()
        with tinyq_loop_share() as share:
            assert app.worker(concurrency=1, async_concurrency=1000).run(burst=True) == 0
    finally:
        gc.unfreeze()
    assert len(lags) == 400
    worst, p99 = max(lags), sorted(lags)[396]
    print(f"loop lag during a drain of 1,000 async jobs: max {worst * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms; tinyq's CPU on the loop: "
          f"{share.worst_iteration * 1000:.1f} ms per iteration at most")
    assert share.callbacks > 2000  # every job's start and end was measured
    assert share.worst_iteration < 0.01
    # Wall clock, measured on a quiet 2-core machine: max 2-5 ms, p99 1-3 ms (before the
    # batched I/O hand-over and gc.freeze: max 16-40 ms). Under a load of 4-5 on 2 cores the
    # p99 reached 25 ms and the max 88 ms: bounded loosely, this catches a loop blocked per
    # job (a broker call on it), not the machine's scheduling.
    assert p99 < 0.05
    assert worst < 0.5


def test_the_loop_hands_its_io_over_in_batches_in_order() -> None:
    """A thousand calls submitted while the I/O thread is busy wake it once, not a thousand
    times (each wake-up met the thread on a lock and could cost the loop the GIL for 5 ms)."""
    io = LoopIo()
    busy, release = threading.Event(), threading.Event()
    ran: list[int] = []
    woken = 0
    submit = io._thread.submit

    def counting_submit(fn: Any) -> Any:
        nonlocal woken
        woken += 1
        return submit(fn)

    io._thread.submit = counting_submit  # type: ignore[assignment]

    def hold() -> None:
        busy.set()
        release.wait(5)

    assert io.submit(hold)
    assert busy.wait(5)
    for n in range(1000):
        assert io.submit(functools.partial(ran.append, n))
    release.set()
    io.close()
    assert ran == list(range(1000))
    assert woken <= 2
    assert not io.submit(lambda: None)  # closed: the caller runs it


FREEZE_APP = """
import gc, os
from tinyq_core import Application

app = Application("memory://")

@app.task()
async def frozen():
    with open(os.environ["OUT"], "w") as f:
        f.write(str(gc.get_freeze_count()))

frozen.delay()
"""


def test_the_worker_command_freezes_what_startup_made(tmp_path: Path) -> None:
    """A full collection skips the app and its imports (it took 20-30 ms of every thread's
    time, the loop's too, with them)."""
    out = tmp_path / "frozen"
    with AppProject(tmp_path, FREEZE_APP, env={"OUT": str(out)}) as project:
        proc = project.start("--burst")
        assert proc.wait(timeout=30) == 0, project.output(proc)
    assert int(out.read_text()) > 1000
