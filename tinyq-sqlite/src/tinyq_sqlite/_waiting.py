"""How a blocked call (``reserve``, a result's ``get``) learns that another process wrote.

SQLite cannot wake a reader in another process, so writers call :meth:`Wakeups.notify` after
committing, and waiters sleep in a :class:`ChangeWaiter` on the matching channel: ``jobs``
(enqueue, nack, recovery, requeued dead letters) or ``results``. The mechanism (inotify,
unix sockets, or ``PRAGMA data_version`` polled every ``poll_interval`` as the last resort) is
:mod:`._wakeup`'s choice. Every wait is bounded anyway (the caller's deadline, the next
delayed job's due time, :data:`RECHECK`), so a lost notification delays, never strands, a job
or a result.
"""

from __future__ import annotations

import threading
import time

from ._db import Database
from ._notify import Notifier
from ._wakeup import Wakeup, open_wakeup

JOBS, RESULTS = "jobs", "results"
# Longest a waiter sleeps before looking again anyway: a notification lost (a writer without
# write access to ``<db>.wake/``) costs at most this, even to a ``get(timeout=None)``.
RECHECK = 1.0


class Wakeups:
    """A broker's wake-up channels, each opened on first use (the broker connects lazily,
    and a process that never waits or writes needs none) and closed with the broker."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._open: dict[str, Wakeup] = {}
        self._notifiers: dict[str, Notifier] = {}

    def channel(self, name: str) -> Wakeup:
        # The file first: its checks name a missing folder clearly, where the wake-up would
        # create it (``<db>.wake/`` sits beside the database). Outside the lock: opening may
        # wait for a locked file, and notify() must not wait behind it.
        self._db.connection()
        with self._lock:
            wake = self._open.get(name)
            if wake is None:
                wake = open_wakeup(self._db.path, name, interval=self._db.options.poll_interval)
                self._open[name] = wake
            return wake

    @property
    def kind(self) -> str | None:
        """The mechanism in use, once a channel is open."""
        with self._lock:
            return next((w.kind for w in self._open.values()), None)

    def notify(self, name: str) -> None:
        """After a COMMIT that made jobs ready (``jobs``) or stored results (``results``).
        A :class:`Notifier`, not the channel's Wakeup: a process that only writes starts no
        listener thread (see ``_notify``)."""
        with self._lock:
            notifier = self._notifiers.get(name)
            if notifier is None:
                notifier = self._notifiers[name] = Notifier(self._db.path, name)
        notifier.notify()

    def waiter(self, name: str) -> ChangeWaiter:
        """Make it BEFORE looking at the table: a notification after that is not missed."""
        return ChangeWaiter(self.channel(name))

    def close(self) -> None:
        """Close every channel (their listener threads end before this returns); a later use
        opens them again."""
        with self._lock:
            opened, self._open = list(self._open.values()), {}
            notifiers, self._notifiers = list(self._notifiers.values()), {}
        for wake in opened:
            wake.close()
        for notifier in notifiers:
            notifier.close()


class ChangeWaiter:
    """Remembers the channel's generation; :meth:`wait_for_change` returns once something was
    notified since, or at the deadline, and takes a new snapshot before the caller looks."""

    def __init__(self, wake: Wakeup) -> None:
        self._wake = wake
        self._since = wake.generation()

    def wait_for_change(self, deadline: float, until: float | None = None) -> bool:
        """Wait for a notification until the monotonic ``deadline`` or the Unix time ``until``
        (a delayed job falls due), whichever comes first. True: look again; False: the
        deadline passed (or the wake-up was closed). Never longer than :data:`RECHECK`."""
        now = time.monotonic()
        if now >= deadline:
            return False
        wait = min(deadline - now, RECHECK)
        if until is not None:
            wait = min(wait, until - time.time())
            if wait <= 0:
                return True
        woke = self._wake.wait(wait, self._since)
        self._since = self._wake.generation()  # before the caller's next look
        if woke:
            return True
        # A timeout ends no sooner than asked: earlier means closed (give up).
        ended = time.monotonic()
        return ended < deadline and ended >= now + wait
