"""Wake-ups across processes for the SQLite broker: a waiter blocked in ``reserve`` or in a
result wait returns soon after another process commits, without polling the file.

SQLite itself cannot wake a reader in another process, so writers notify after committing
ready jobs or results (the broker through :class:`._notify.Notifier`, which reaches the
waiters of every mechanism; :meth:`Wakeup.notify` reaches its own kind), and waiters block in
:meth:`Wakeup.wait`. Three mechanisms, picked by :func:`open_wakeup` (figures in
docs/sqlite.md, "Wake-ups"):

* ``inotify`` (Linux): every process watches one file, ``<db>.wake/<channel>``; ``notify`` sets
  its times (one ``utime`` call, whatever the number of waiters). Nothing per process on disk,
  so a crashed process leaves nothing stale.
* ``socket`` (other POSIX systems, or when inotify is unavailable): one unix datagram socket
  per process and channel in ``<db>.wake/``; ``notify`` sends a byte to each, and removes the
  sockets of dead processes (the send is refused).
* ``poll``: ``PRAGMA data_version`` on a connection of the waiter's own, every few ms: works
  anywhere the database does, at a latency of the interval and some idle CPU.

No lost wake-up: take ``since = wakeup.generation()`` *before* looking at the table, and pass
it to ``wait``: anything notified after the snapshot makes ``wait`` return at once. Wakes may be
spurious (callers always re-check). Channels (``jobs``, ``results``) keep kinds of news
apart. One object serves every thread of a process; the OS
resources are reopened in a forked child. The code: :mod:`._wakeup_base` (the interface and
the listener thread), :mod:`._wakeup_kinds` (the three mechanisms).
"""

from __future__ import annotations

import logging
import socket
import sys

from ._wakeup_base import ListeningWakeup, Wakeup
from ._wakeup_kinds import InotifyWakeup, PollingWakeup, SocketWakeup

__all__ = ["InotifyWakeup", "ListeningWakeup", "PollingWakeup", "SocketWakeup", "Wakeup",
           "open_wakeup"]

log = logging.getLogger(__name__)


def open_wakeup(
    db_path: str, channel: str = "jobs", *, kind: str = "auto", interval: float = 0.005
) -> Wakeup:
    """The fastest mechanism that works here for ``db_path``: inotify, then sockets, then
    polling (``kind`` forces one: ``inotify``, ``socket``, ``poll``). Notifications reach the
    waiters of the same ``channel`` (polling cannot tell them apart: any commit wakes)."""
    if kind in ("auto", "inotify") and sys.platform.startswith("linux"):
        try:
            return InotifyWakeup(db_path, channel)
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify
            if kind == "inotify":
                raise
            log.info("tinyq-sqlite: inotify unavailable (%s): trying sockets", exc)
    if kind in ("auto", "socket") and hasattr(socket, "AF_UNIX"):
        try:
            return SocketWakeup(db_path, channel)
        except OSError as exc:
            if kind == "socket":
                raise
            log.info("tinyq-sqlite: wake-up sockets unavailable (%s): polling", exc)
    if kind not in ("auto", "poll", "inotify", "socket"):
        raise ValueError(f"unknown wake-up kind {kind!r}: auto, inotify, socket or poll")
    return PollingWakeup(db_path, channel, interval)
