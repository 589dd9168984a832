"""Wake-ups across processes for the SQLite broker: a waiter blocked in ``reserve`` or in a
result wait returns soon after another process commits, without polling the file.

SQLite itself cannot wake a reader in another process, so writers call :meth:`Wakeup.notify`
after committing ready jobs or results, and waiters block in :meth:`Wakeup.wait`. Three
mechanisms, picked by :func:`open_wakeup` (figures in docs/sqlite.md, "Wake-ups"):

* ``inotify`` (Linux): every process watches one file, ``<db>.wake/inotify``; ``notify`` sets
  its times (one ``utime`` call, whatever the number of waiters). Nothing per process on disk,
  so a crashed process leaves nothing stale.
* ``socket`` (other POSIX systems, or when inotify is unavailable): one unix datagram socket per
  process in ``<db>.wake/``; ``notify`` sends a byte to each, and removes the sockets of dead
  processes (the send is refused).
* ``poll``: ``PRAGMA data_version`` on a connection of the waiter's own, every few ms: works
  anywhere the database does, at a latency of the interval and some idle CPU.

No lost wake-up: take ``since = wakeup.generation()`` *before* looking at the table, and pass
it to ``wait``: anything notified after the snapshot makes ``wait`` return at once. Wakes may be
spurious (callers always re-check). One object serves every thread of a process; the OS
resources are reopened in a forked child.
"""

from __future__ import annotations

import abc
import ctypes
import errno
import logging
import os
import select
import socket
import sqlite3
import sys
import threading
import time
import uuid

log = logging.getLogger(__name__)

_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE, _IN_IGNORED = 0x2, 0x4, 0x8, 0x8000
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, 0o2000000
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


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


class _Listening(Wakeup):
    """The event mechanisms: a listener thread turns this process's OS events into a
    generation counter, and threads wait on a Condition for it to move."""

    def __init__(self, db_path: str) -> None:
        self.folder = os.path.abspath(db_path) + ".wake"
        self._cond = threading.Condition()
        self._generation = 0
        self._closed = False
        self._pid = -1
        self._stop_r = self._stop_w = -1
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
                log.warning("tinyq-sqlite: cannot wake other processes (%s): they poll at "
                            "their timeout", exc)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._pid == os.getpid():
            os.write(self._stop_w, b"x")  # the listener thread closes the OS resources

    def _bump(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _ensure(self) -> None:
        """Open the OS resources in this process: at construction, and again in a forked
        child (whose copies are shared with the parent and have no listener thread)."""
        if self._pid == os.getpid() or self._closed:
            return
        if self._pid != -1:  # a forked child: close its copies, the parent keeps its own
            self._forget()
            os.close(self._stop_r)
            os.close(self._stop_w)
        self._cond = threading.Condition()  # a parent's thread may have held the old one
        os.makedirs(self.folder, exist_ok=True)
        event_fd = self._open()
        self._stop_r, self._stop_w = os.pipe()
        self._pid = os.getpid()
        threading.Thread(target=self._listen, args=(event_fd, self._stop_r), daemon=True,
                         name=f"tinyq-sqlite-wakeup-{self.kind}").start()

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
        finally:
            self._release()
            os.close(stop_fd)
            os.close(self._stop_w)

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


class InotifyWakeup(_Listening):
    """Linux: all processes watch one file; a writer touches it. ``watch`` names another file
    to watch instead (the benchmark watches the ``-wal`` file, with no explicit notify)."""

    kind = "inotify"

    def __init__(self, db_path: str, watch: str | None = None) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.path = watch or os.path.join(os.path.abspath(db_path) + ".wake", "inotify")
        super().__init__(db_path)

    def _open(self) -> int:
        if not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o666))
        fd: int = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:  # EMFILE: fs.inotify.max_user_instances (128 by default) used up
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._fd = fd
        self._add_watch()
        return fd

    def _add_watch(self) -> None:
        mask = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE
        if self._libc.inotify_add_watch(self._fd, os.fsencode(self.path), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {self.path}")

    def _drain(self, fd: int) -> None:
        ignored = False
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                break
            offset = 0
            while offset + 16 <= len(data):  # struct inotify_event: wd, mask, cookie, len, name
                mask = int.from_bytes(data[offset + 4:offset + 8], sys.byteorder)
                ignored |= bool(mask & _IN_IGNORED)
                offset += 16 + int.from_bytes(data[offset + 12:offset + 16], sys.byteorder)
        if ignored:  # the file was removed or replaced: watch the new one (the caller bumps)
            try:
                if not os.path.exists(self.path):
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o666))
                self._add_watch()
            except OSError as exc:
                log.warning("tinyq-sqlite: lost the wake-up watch on %s: %s", self.path, exc)

    def _signal(self) -> None:
        try:
            os.utime(self.path)
        except FileNotFoundError:  # removed by hand: recreate it, the watchers follow
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o666))

    def _release(self) -> None:
        os.close(self._fd)

    def _forget(self) -> None:
        os.close(self._fd)


class SocketWakeup(_Listening):
    """POSIX: one unix datagram socket per process in ``<db>.wake/``; notify sends to each."""

    kind = "socket"

    def _open(self) -> int:
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(self._address(self.name))
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # notify's, kept open
        self._out.setblocking(False)
        return self._sock.fileno()

    def _address(self, name: str) -> str:
        path = os.path.join(self.folder, name)
        if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
            return path
        if not os.path.isdir("/proc/self/fd"):
            raise OSError(errno.ENAMETOOLONG, f"socket path too long: {path}")
        # Linux: reach the folder through a descriptor, a short path whatever its depth
        if getattr(self, "_dir_fd_pid", None) != os.getpid():
            self._dir_fd, self._dir_fd_pid = os.open(self.folder, os.O_RDONLY), os.getpid()
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    def _drain(self, fd: int) -> None:
        while True:
            try:
                self._sock.recv(64)
            except BlockingIOError:
                break

    def _signal(self) -> None:
        self._bump()  # this process's waiters at once, without a round trip
        for name in os.listdir(self.folder):  # every time: a waiter may have just arrived
            if not name.endswith(".sock") or name == self.name:
                continue
            try:
                self._out.sendto(b"w", self._address(name))
            except ConnectionRefusedError:  # nobody bound: its process died
                try:
                    os.unlink(os.path.join(self.folder, name))
                except OSError:
                    pass
            except (BlockingIOError, FileNotFoundError, PermissionError):
                pass  # queue full (a wake is pending anyway), gone meanwhile, or not ours

    def _forget(self) -> None:
        self._sock.close()
        self._out.close()

    def _release(self) -> None:
        self._sock.close()
        self._out.close()
        try:
            os.unlink(os.path.join(self.folder, self.name))
        except OSError:
            pass


class PollingWakeup(Wakeup):
    """Anywhere: poll ``PRAGMA data_version`` (it moves when another connection commits) every
    ``interval`` seconds on a connection of this object's own. ``notify`` has nothing to do."""

    kind = "poll"

    def __init__(self, db_path: str, interval: float = 0.005) -> None:
        self.db_path, self.interval = db_path, interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = -1
        self._closed = False

    def _version(self) -> int:
        with self._lock:
            if self._conn is None or self._conn_pid != os.getpid():
                self._conn = sqlite3.connect(self.db_path, check_same_thread=False,
                                             isolation_level=None)
                self._conn_pid = os.getpid()
            version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
            return version

    def generation(self) -> int:
        return self._version()

    def wait(self, timeout: float, since: int | None = None) -> bool:
        start = self._version() if since is None else since
        deadline = time.monotonic() + timeout
        while not self._closed:
            if self._version() != start:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.interval, remaining))
        return False

    def notify(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None


def open_wakeup(db_path: str, kind: str = "auto", interval: float = 0.005) -> Wakeup:
    """The fastest mechanism that works here for ``db_path``: inotify, then sockets, then
    polling (``kind`` forces one: ``inotify``, ``socket``, ``poll``)."""
    if kind in ("auto", "inotify") and sys.platform.startswith("linux"):
        try:
            return InotifyWakeup(db_path)
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify
            if kind == "inotify":
                raise
            log.info("tinyq-sqlite: inotify unavailable (%s): trying sockets", exc)
    if kind in ("auto", "socket") and hasattr(socket, "AF_UNIX"):
        try:
            return SocketWakeup(db_path)
        except OSError as exc:
            if kind == "socket":
                raise
            log.info("tinyq-sqlite: wake-up sockets unavailable (%s): polling", exc)
    if kind not in ("auto", "poll", "inotify", "socket"):
        raise ValueError(f"unknown wake-up kind {kind!r}: auto, inotify, socket or poll")
    return PollingWakeup(db_path, interval)
