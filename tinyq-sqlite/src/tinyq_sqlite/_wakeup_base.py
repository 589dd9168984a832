"""The wake-up interface (:class:`Wakeup`), and the machinery the event mechanisms share
(:class:`ListeningWakeup`): a listener thread per process turns OS events into a generation
counter that waiting threads watch. Overview and figures: :mod:`tinyq_sqlite._wakeup`."""

from __future__ import annotations

import abc
import logging
import os
import select
import threading

log = logging.getLogger("tinyq_sqlite._wakeup")

_ensure_lock = threading.Lock()
if hasattr(os, "register_at_fork"):  # a thread may hold it at the fork: the child needs a new one
    def _new_lock() -> None:
        global _ensure_lock
        _ensure_lock = threading.Lock()

    os.register_at_fork(after_in_child=_new_lock)


class Wakeup(abc.ABC):
    """What the broker uses; ``kind`` names the mechanism."""

    kind = "abstract"

    @abc.abstractmethod
    def generation(self) -> int:
        """A snapshot to pass to :meth:`wait`, taken before checking the table."""

    @abc.abstractmethod
    def wait(self, timeout: float, since: int | None = None) -> bool:
        """Block up to ``timeout`` seconds until a notification newer than ``since`` (default:
        now); True when woken (maybe spuriously), False on timeout or after close."""

    @abc.abstractmethod
    def notify(self) -> None:
        """Tell every waiter, in every process, that something may have changed: call it after
        committing ready jobs or results."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the OS resources; waits in progress return False."""


class ListeningWakeup(Wakeup):
    """The event mechanisms: a listener thread turns this process's OS events into a
    generation counter, and threads wait on a Condition for it to move. A ``channel`` keeps
    kinds of news apart (``jobs``, ``results``): idle workers are not woken by every result
    stored, nor result waiters by every job enqueued."""

    def __init__(self, db_path: str, channel: str = "jobs") -> None:
        if not channel.isidentifier():
            raise ValueError(f"a wake-up channel is a name like 'jobs', not {channel!r}")
        self.folder = os.path.abspath(db_path) + ".wake"
        self.channel = channel
        self._cond = threading.Condition()
        self._generation = 0
        self._closed = False
        self._pid = -1
        self._stop_r = self._stop_w = -1
        self._thread: threading.Thread | None = None
        self._warned = False
        self._ensure()

    def generation(self) -> int:
        self._ensure()
        with self._cond:
            return self._generation

    def wait(self, timeout: float, since: int | None = None) -> bool:
        self._ensure()
        with self._cond:
            start = self._generation if since is None else since
            return self._cond.wait_for(
                lambda: self._closed or self._generation != start, timeout
            ) and not self._closed

    def notify(self) -> None:
        self._ensure()
        try:
            self._signal()
        except OSError as exc:  # waiters then wake at their timeout: degrade, never fail a write
            if not self._warned:
                self._warned = True
                log.warning("tinyq-sqlite: cannot wake other processes (%s): they wake at "
                            "their timeouts", exc)

    def close(self) -> None:
        """Also ends this process's listener thread before returning: no thread outlives
        the broker that started it."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            if self._pid != os.getpid():
                return  # a forked child that never used it: the parent's thread is not ours
            if self._stop_w >= 0:
                os.write(self._stop_w, b"x")  # the listener thread closes the OS resources
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _bump(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _ensure(self) -> None:
        """Open the OS resources in this process: at construction, and again in a forked
        child (whose copies are shared with the parent and have no listener thread)."""
        if self._pid == os.getpid() or self._closed:
            return
        with _ensure_lock:  # two threads of a forked child would both reopen
            if self._pid == os.getpid():
                return
            if self._pid != -1:  # a forked child: close its copies, the parent keeps its own
                self._forget()
                if self._stop_w >= 0:
                    os.close(self._stop_r)
                    os.close(self._stop_w)
            self._cond = threading.Condition()  # a parent's thread may have held the old one
            os.makedirs(self.folder, exist_ok=True)
            event_fd = self._open()
            self._stop_r, self._stop_w = os.pipe()
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._listen, args=(event_fd, self._stop_r), daemon=True,
                name=f"tinyq-sqlite-wakeup-{self.kind}")
            self._thread.start()

    def _listen(self, event_fd: int, stop_fd: int) -> None:
        poller = select.poll()
        poller.register(event_fd, select.POLLIN)
        poller.register(stop_fd, select.POLLIN)
        try:
            while True:  # until the stop byte: close() writes it after setting _closed
                fds = {fd for fd, _ in poller.poll()}
                if stop_fd in fds:
                    break
                self._drain(event_fd)
                self._bump()
        except Exception:  # waiters still wake at their timeouts
            log.exception("tinyq-sqlite: the wake-up listener stopped")
        finally:
            self._release()
            with self._cond:  # close() must not write to a closed (or reused) descriptor
                os.close(stop_fd)
                os.close(self._stop_w)
                self._stop_w = -1

    def _open(self) -> int:
        """Create this process's OS resource; return the fd the listener waits on."""
        raise NotImplementedError

    def _drain(self, fd: int) -> None:
        """Consume the pending events of ``fd`` (non-blocking)."""
        raise NotImplementedError

    def _signal(self) -> None:
        """Wake the waiters of every process."""
        raise NotImplementedError

    def _release(self) -> None:
        """Close this process's OS resource (in the listener thread, after close())."""

    def _forget(self) -> None:
        """In a forked child: close the copy of the parent's OS resource, leaving its files."""
