"""How a blocked call (``reserve``, a result's ``get``) learns that another process wrote.

SQLite cannot wake a reader in another process, so for now this polls ``PRAGMA
data_version`` every ``poll_interval`` seconds: it changes when any other connection commits,
and reading it touches only the WAL index in shared memory, so an idle worker does no file
I/O. The caller re-runs its query only when something changed. Everything about waiting is in
this one class, so that a true wake-up (a FIFO or inotify beside the file) can replace it.
"""

from __future__ import annotations

import time

from ._db import Database


class ChangeWaiter:
    """Remembers the file's version when made; :meth:`wait_for_change` returns once another
    connection has committed since, or at the deadline."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._seen = db.data_version()

    def wait_for_change(self, deadline: float, until: float | None = None) -> bool:
        """Wait until another commit, the monotonic ``deadline`` or the Unix time ``until``
        (a delayed job falls due), whichever comes first; False once the deadline passed."""
        interval = self._db.options.poll_interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            if until is not None and time.time() >= until:
                return True
            time.sleep(min(interval, deadline - now))
            version = self._db.data_version()
            if version != self._seen:
                self._seen = version
                return True
