"""The wake-up mechanisms: inotify on one file (Linux), a unix datagram socket per process
(POSIX), ``PRAGMA data_version`` polling (anywhere). Why and how fast: :mod:`._wakeup`."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid

from ._notify import SOCKET_PATH_MAX, Notifier
from ._wakeup_base import ListeningWakeup, Wakeup, log

_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE, _IN_IGNORED = 0x2, 0x4, 0x8, 0x8000
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, 0o2000000


class InotifyWakeup(ListeningWakeup):
    """Linux: all processes watch one file; a writer touches it. ``watch`` names another file
    to watch instead (the benchmark watches the ``-wal`` file, with no explicit notify)."""

    kind = "inotify"

    def __init__(self, db_path: str, channel: str = "jobs", watch: str | None = None) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.path = watch or os.path.join(os.path.abspath(db_path) + ".wake", channel)
        super().__init__(db_path, channel)

    def _open(self) -> int:
        if not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o666))
        fd: int = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:  # EMFILE: fs.inotify.max_user_instances (128 by default) used up
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._fd = fd
        try:
            self._add_watch()
        except OSError:
            os.close(fd)
            raise
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


class SocketWakeup(ListeningWakeup):
    """POSIX: one unix datagram socket per process in ``<db>.wake/``; notify sends to each."""

    kind = "socket"

    def _open(self) -> int:
        self.name = f"{self.channel}-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(self._address(self.name))
        self._notifier = Notifier(self.folder[:-len(".wake")], self.channel)
        return self._sock.fileno()

    def _address(self, name: str) -> str:
        path = os.path.join(self.folder, name)
        if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
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
        self._notifier.send(skip=self.name)  # lists the folder: a waiter may have just arrived

    def _forget(self) -> None:
        self._sock.close()
        self._notifier.close()

    def _release(self) -> None:
        self._sock.close()
        self._notifier.close()
        try:
            os.unlink(os.path.join(self.folder, self.name))
        except OSError:
            pass


class PollingWakeup(Wakeup):
    """Anywhere: poll ``PRAGMA data_version`` (it moves when another connection commits) every
    ``interval`` seconds on a connection of this object's own. ``notify`` has nothing to do."""

    kind = "poll"

    def __init__(self, db_path: str, channel: str = "jobs", interval: float = 0.005) -> None:
        self.db_path, self.channel, self.interval = db_path, channel, interval
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
