"""One SQLite file shared by threads and processes: connections, transactions, errors.

* One connection per thread (``sqlite3`` connections are not for sharing between threads),
  made on first use and made again after a fork (a connection must not cross one).
* WAL, so readers never block the writer; every write is a short ``BEGIN IMMEDIATE``
  transaction, which takes the write lock up front: a deferred transaction that reads and then
  writes can fail with "database is locked" at once, without waiting, when another process
  wrote in between. A write of one statement (:meth:`Database.write_one`) needs no
  transaction of its own: SQLite makes it one, and its busy wait covers it.
* Busy handling in two layers: SQLite's own ``busy_timeout`` sleeps and retries inside a
  statement; when that runs out too (a long checkpoint, many writers), :meth:`write` rolls
  back and runs the whole transaction again after a growing pause, for up to
  :data:`LOCKED_FOR` seconds. Contention is never a user's error; a file locked that long is
  :class:`BrokerUnavailable`.
* Errors: whatever the file or the disk does wrong reaches users as one tinyq error that
  names the file (ConfigurationError for a file that cannot be used at all, BrokerError for an
  operation that failed), never as a traceback of ``sqlite3.OperationalError``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from tinyq_core.plugin import BrokerError, BrokerUnavailable, ConfigurationError

from ._options import Options
from ._schema import VERSION, current_version, migrate

T = TypeVar("T")
LOCKED_FOR = 60.0  # seconds of "database is locked" before a write gives up
_INHERITED: list[sqlite3.Connection] = []  # a forked child's copies of its parent's connections


class StoreFull(BrokerError):
    """The disk (or the file's ``max_page_count``) is full: the transaction was rolled back,
    so nothing of it is stored."""


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Database:
    """The file at ``options.path``, opened lazily by the first thread that uses it."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.path = options.path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._pid = os.getpid()

    # -- connections ---------------------------------------------------------------------

    def _check_file(self) -> None:
        """Refuse, with a clear message, what sqlite3 would report vaguely or too late."""
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ConfigurationError(
                f"cannot open the SQLite broker's file {self.path}: the folder {folder} does "
                "not exist (create it first)")
        # Write bits checked too: root may write anywhere, but a file marked read-only says
        # someone meant it to stay as it is.
        if os.path.exists(self.path) and (not os.access(self.path, os.R_OK | os.W_OK)
                                          or not os.stat(self.path).st_mode & 0o222):
            raise ConfigurationError(
                f"cannot open the SQLite broker's file {self.path}: it is not readable and "
                "writable by this user (every producer and worker writes to it)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"cannot use the SQLite broker's file {self.path}: its folder {folder} is not "
                "writable (SQLite keeps its -wal and -shm files beside the database)")

    def _open(self) -> sqlite3.Connection:
        self._check_file()
        try:
            # Autocommit (isolation_level=None): this module says BEGIN IMMEDIATE itself.
            conn = sqlite3.connect(self.path, timeout=self.options.busy_timeout,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open the SQLite file {self.path}: {exc}") from None
        try:
            self._retry(lambda: self._setup(conn))
        except BaseException:
            conn.close()
            raise
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                raise
            raise ConfigurationError(
                f"{self.path} cannot be used as the SQLite broker's file: {exc} (is it "
                "another kind of file? point the URI at a new file name)") from None
        if str(mode).lower() != "wal":
            raise ConfigurationError(f"{self.path}: SQLite refused WAL mode ({mode})")
        conn.execute(f"PRAGMA synchronous={self.options.synchronous}")
        # Checked by every new connection, not once per process: the file may have been
        # replaced meanwhile (deleted and made again by another process).
        if current_version(conn) == VERSION:
            return  # the usual case: a read, no write lock
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrate(conn, self.path)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema checked) on first use."""
        if os.getpid() != self._pid:  # forked: the parent's connections are not ours
            with self._lock:
                # Kept, never closed: a close here could checkpoint and delete the WAL the
                # parent is using (SQLite: do not carry a connection across a fork).
                _INHERITED.extend(self._all)
                self._local, self._all, self._pid = threading.local(), [], os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            self._local.queues = set()
            with self._lock:
                self._all.append(conn)
        return conn

    def known_queues(self) -> set[str]:
        """Queue names this thread's connection has committed a ``queues`` row for: a row
        is never deleted, so it is written once per connection, not once per job. Per
        connection, so that a file made again underneath (a new connection) gets its rows."""
        self.connection()
        queues: set[str] = self._local.queues
        return queues

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
            self._local = threading.local()
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    # -- transactions --------------------------------------------------------------------

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while the file is locked, with a growing, jittered pause."""
        give_up = time.monotonic() + LOCKED_FOR
        pause = 0.001
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._error(exc) from None
                if time.monotonic() > give_up:
                    raise BrokerUnavailable(
                        f"the SQLite file {self.path} stayed locked for {LOCKED_FOR:.0f} s "
                        "(a process holding a long transaction?)") from None
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 0.1)

    def _error(self, exc: sqlite3.Error) -> BrokerError:
        text = str(exc)
        # The primary result code (Python >= 3.11 tells it); 13 SQLITE_FULL, 10 SQLITE_IOERR.
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == 13 or "full" in text.lower():
            return StoreFull(f"the disk holding {self.path} is full ({text}); nothing of "
                             "this operation was stored: free some space and retry")
        if code == 10 or "disk i/o error" in text.lower():
            # A write the OS refused: a full disk, a file-size limit (EFBIG), a failing
            # device. SQLite rolled the transaction back.
            return StoreFull(f"writing {self.path} failed ({text}: a full disk or a file "
                             "size limit?); nothing of this operation was stored")
        if "readonly" in text.lower() or "read-only" in text.lower():
            return BrokerError(f"{self.path} is read-only for this process: {text}")
        return BrokerError(f"SQLite error on {self.path}: {text}")

    def write(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = False) -> T:
        """Run ``work(conn)`` in one ``BEGIN IMMEDIATE`` transaction, again from the start
        while the file is locked. ``durable``: this commit is fsynced (synchronous=FULL)."""
        conn = self.connection()

        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return out

        return self._synced(conn, lambda: self._retry(attempt), durable)

    def write_one(self, sql: str, params: Sequence[object], *, durable: bool = False) -> int:
        """One statement in autocommit mode, its row count: SQLite runs a lone statement as
        its own transaction (all of it or nothing, the write lock taken when it writes), so
        this is :meth:`write` of one statement without the BEGIN and COMMIT round trips."""
        conn = self.connection()
        return self._synced(conn, lambda: self._retry(
            lambda: conn.execute(sql, params).rowcount), durable)

    def _synced(self, conn: sqlite3.Connection, run: Callable[[], T], durable: bool) -> T:
        """``run()``, its commit fsynced (synchronous=FULL) when ``durable``."""
        if not durable or self.options.synchronous == "FULL":
            return run()
        conn.execute("PRAGMA synchronous=FULL")
        try:
            return run()
        finally:
            conn.execute(f"PRAGMA synchronous={self.options.synchronous}")

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` outside any write transaction (reads see the last commit)."""
        conn = self.connection()
        return self._retry(lambda: work(conn))

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn a stray sqlite3 error into a tinyq one."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None
