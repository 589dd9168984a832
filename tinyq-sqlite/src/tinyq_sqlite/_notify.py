"""The writer's side of the wake-ups: wake a channel's waiters in every process, whichever
mechanism each of them chose, without a listener thread of its own.

:meth:`Wakeup.notify` needs the object opened for waiting, which on Linux starts a listener
thread that then wakes on the process's own notifications: a producer enqueueing one job at
a time paid ~100 µs per job for it (a GIL hand-off to that thread), doubling an enqueue. And a
process that fell back to sockets (inotify instances used up) must still be woken by one that
uses inotify. So a :class:`Notifier` touches the inotify file *and* sends a byte to each
socket of the channel: ~10 µs when only inotify waiters exist. It creates nothing: no
``<db>.wake/`` folder or file means nobody waits that way.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from ._wakeup_base import log

SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class Notifier:
    """``notify()`` after a COMMIT; one per channel and broker, safe across a fork."""

    def __init__(self, db_path: str, channel: str) -> None:
        self.folder = os.path.abspath(db_path) + ".wake"
        self.channel = channel
        self._touch = os.path.join(self.folder, channel)  # the file inotify waiters watch
        self._out: socket.socket | None = None
        self._pid = -1
        self._warned = False
        self._listed: tuple[int, list[str]] = (-1, [])  # the folder's mtime, its sockets

    def notify(self) -> None:
        try:
            try:
                os.utime(self._touch)  # inotify waiters
            except FileNotFoundError:
                if not os.path.isdir(self.folder):
                    return  # nobody has ever waited on this file
            self.send()
        except OSError as exc:  # waiters then wake at their timeouts: never fail a write
            if not self._warned:
                self._warned = True
                log.warning("tinyq-sqlite: cannot wake other processes (%s): they wake at "
                            "their timeouts", exc)

    def send(self, skip: str | None = None) -> None:
        """A byte to each socket waiter of the channel but ``skip`` (the caller's own), and
        remove the sockets of dead processes."""
        names = [n for n in self._sockets() if n != skip]
        if not names:
            return
        if self._pid != os.getpid() or self._out is None:  # first use, or a forked child
            self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._out.setblocking(False)
            self._pid = os.getpid()
        dir_fd = -1
        try:
            for name in names:
                path = os.path.join(self.folder, name)
                if len(os.fsencode(path)) > SOCKET_PATH_MAX:
                    # A deep folder: reach it through a descriptor (Linux), as the waiter does.
                    if not os.path.isdir("/proc/self/fd"):
                        raise OSError(errno.ENAMETOOLONG, f"socket path too long: {path}")
                    if dir_fd < 0:
                        dir_fd = os.open(self.folder, os.O_RDONLY)
                    path = f"/proc/self/fd/{dir_fd}/{name}"
                try:
                    self._out.sendto(b"w", path)
                except ConnectionRefusedError:  # nobody bound: its process died
                    try:
                        os.unlink(os.path.join(self.folder, name))
                    except OSError:
                        pass
                except (BlockingIOError, FileNotFoundError, PermissionError):
                    pass  # queue full (a wake is pending anyway), gone meanwhile, or not ours
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)

    def _sockets(self) -> list[str]:
        """The channel's socket files, listed again only when the folder changed (a socket
        made or removed): a stat instead of a listing on every commit. The folder's time is
        coarse (a clock tick), so within a second of a change it lists anyway."""
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime == self._listed[0] and time.time_ns() - mtime > 1_000_000_000:
            return self._listed[1]
        prefix = f"{self.channel}-"
        names = [n for n in os.listdir(self.folder) if n.startswith(prefix) and n.endswith(".sock")]
        self._listed = (mtime, names)
        return names

    def close(self) -> None:
        if self._out is not None and self._pid == os.getpid():
            self._out.close()
        self._out = None
