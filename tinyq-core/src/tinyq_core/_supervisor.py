"""``tinyq -p N``: N worker processes under one supervising parent.

Each child is a plain ``tinyq`` worker (the same command line without ``-p``) in a session of
its own, so a Ctrl+C in the terminal reaches only the parent, which forwards it: the first
SIGINT/SIGTERM to every child is their warm shutdown, the second their cold one. A child that
exits without being asked to (killed, crashed, or a job that called ``os._exit(0)``) is
started again, whatever its exit status: its jobs come back to the queue through lease
recovery, and a job that keeps killing its worker is dead-lettered as a crash loop. The parent
exits once every child has exited after a stop, or, with ``--burst``, after all finished (a
burst child's status 0 means "nothing left").
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn

from ._backoff import Backoff

logger = logging.getLogger("tinyq.supervisor")

POLL_SECONDS = 0.2
PARENT_ENV = "TINYQ_SUPERVISOR_PID"
PROCESSES_ENV = "TINYQ_SUPERVISOR_PROCESSES"  # for the banner: "8 threads x 4 processes"
YOUNG_SECONDS = 5.0  # a child dying sooner than this after its start is restarted with backoff
RESTART_BACKOFF = Backoff(base=1.0, cap=10.0)


class Supervisor:
    def __init__(self, child_args: Sequence[str], processes: int, burst: bool = False,
                 on_exit: Callable[[int], None] | None = None) -> None:
        self.child_args = list(child_args)
        self.on_exit = on_exit  # called with the pid of every child that exited
        self.processes = processes
        self.burst = burst
        self.children: dict[int, subprocess.Popen[bytes]] = {}  # slot -> process
        self.started_at: dict[int, float] = {}
        self.young_deaths: dict[int, int] = {}  # deaths in a row soon after a start
        self.stops = 0  # signals received: 1 warm, 2 cold
        self.forwarded = 0  # of those, sent on to the children
        self.finished: dict[int, int] = {}  # slot -> exit status, for children done for good

    def _spawn(self, slot: int) -> None:
        command = [sys.executable, "-m", "tinyq_core", *self.child_args]
        # The child stops by itself if this parent dies (it watches its parent process).
        env = {**os.environ, PARENT_ENV: str(os.getpid()), PROCESSES_ENV: str(self.processes)}
        self.children[slot] = subprocess.Popen(command, start_new_session=True, env=env)
        self.started_at[slot] = time.monotonic()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only counted here: the loop forwards it. The handler can run while a replacement
        # child is being started, inside Popen and before the child is recorded; a child
        # signalled from here would then never hear of the stop, and the pool would wait on it.
        self.stops += 1

    def _forward_stops(self) -> None:
        """Send every child SIGTERM once per stop received (warm, then cold)."""
        while self.forwarded < self.stops:
            self.forwarded += 1
            kind = "warm" if self.forwarded == 1 else "cold"
            logger.info("Received stop signal, %s shutdown of %d worker processes...",
                           kind, len(self.children))
            for process in self.children.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        logger.info("Supervising %d worker processes", self.processes)
        for slot in range(self.processes):
            self._spawn(slot)
        pending_restart: dict[int, float] = {}
        while self.children or pending_restart:
            time.sleep(POLL_SECONDS)
            self._forward_stops()
            now = time.monotonic()
            for slot, process in list(self.children.items()):
                status = process.poll()
                if status is None:
                    continue
                del self.children[slot]
                if self.on_exit is not None:
                    self.on_exit(process.pid)
                if self.stops or (self.burst and status == 0):
                    if self.forwarded and status == -signal.SIGTERM:
                        status = 0  # ended by our SIGTERM before it set up its handlers
                    self.finished[slot] = status  # stopped, or a burst worker that is done
                    continue
                # Exited unasked (killed, crashed, os._exit in a job): start it again,
                # backing off if it keeps dying young.
                young = now - self.started_at[slot] < YOUNG_SECONDS
                self.young_deaths[slot] = self.young_deaths.get(slot, 0) + 1 if young else 0
                deaths = self.young_deaths[slot]
                delay = RESTART_BACKOFF.delay(deaths - 1) if deaths else 0.0
                logger.error("Worker process %d exited with status %s without being asked to; "
                             "restarting in %.1fs", process.pid, status, delay)
                pending_restart[slot] = now + delay
            for slot, when in list(pending_restart.items()):
                if self.stops:
                    del pending_restart[slot]
                elif now >= when:
                    del pending_restart[slot]
                    self._spawn(slot)
        worst = max(self.finished.values(), default=0)
        return 0 if worst == 0 else 1


def guard_os_exit() -> None:
    """Make ``os._exit`` called in this worker process (by a job: nothing of tinyq calls it)
    leave a log line, and exit with status 1 when asked for 0: the worker did not finish, and
    a process manager should see a failure. ``os._exit`` skips every handler and ``finally``,
    so wrapping the function is the only place left to say why the process is gone. Forked
    children (another pid) are left alone."""
    real_exit = os._exit
    pid = os.getpid()

    def exit_now(status: int) -> NoReturn:
        if os.getpid() == pid:
            logger.error("os._exit(%s) called in thread %s: the worker process ends now; its "
                         "jobs run again after their lease", status,
                         threading.current_thread().name)
            for handler in logging.getLogger().handlers:
                handler.flush()
            status = status or 1
        real_exit(status)

    os._exit = exit_now


def watch_parent(stop: Callable[[], None]) -> None:
    """In a child: call ``stop`` (a warm shutdown) once the supervising parent is gone, so an
    orphaned worker does not run on unsupervised."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        logger.warning("Supervisor %s is gone, warm shutdown...", parent)
        stop()

    threading.Thread(target=watch, name="ParentWatch", daemon=True).start()
