"""The SQLite broker's cancel requests (:class:`CancelRequests`): ``cancel`` is one write
transaction (a waiting job's row deleted and its outcome stored, or a leased job flagged in
``cancel_requests``); the flags are read back in one read."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from tinyq_core.plugin import CancelRequests, CancelState, Result

from ._db import Database
from ._results import store_results
from ._schema import LEASED
from ._waiting import RESULTS, Wakeups


class CancelMixin(CancelRequests):
    _db: Database
    _wakeups: Wakeups

    def cancel(
        self,
        job_id: str,
        queue: str,
        *,
        grace: float | None,
        ttl: float,
        result: Result | None = None,
        result_ttl: float = 0.0,
    ) -> CancelState:
        def work(conn: sqlite3.Connection) -> CancelState:
            row = conn.execute("SELECT seq, state FROM jobs WHERE queue = ? AND id = ?",
                               (queue, job_id)).fetchone()
            if row is None:
                return "absent"
            if row[1] == LEASED:
                conn.execute(
                    """INSERT INTO cancel_requests (queue, job_id, grace, expires)
                       VALUES (?, ?, ?, ?) ON CONFLICT (queue, job_id) DO UPDATE
                       SET grace = excluded.grace, expires = excluded.expires""",
                    (queue, job_id, grace, time.time() + ttl))
                return "flagged"
            conn.execute("DELETE FROM jobs WHERE seq = ?", (row[0],))
            if result is not None:
                store_results(conn, [result], result_ttl)
            return "removed"

        state = self._db.write(work)
        if state == "removed" and result is not None:
            self._wakeups.notify(RESULTS)
        return state

    def cancel_requests(self, queue: str, job_ids: Sequence[str]) -> dict[str, float | None]:
        if not job_ids:
            return {}

        def read(conn: sqlite3.Connection) -> dict[str, float | None]:
            now = time.time()
            found: dict[str, float | None] = {}
            # In chunks: SQLite limits the parameters of one statement.
            for start in range(0, len(job_ids), 500):
                chunk = list(job_ids[start:start + 500])
                marks = ",".join("?" * len(chunk))
                found.update(conn.execute(
                    f"SELECT job_id, grace FROM cancel_requests WHERE queue = ? AND "
                    f"job_id IN ({marks}) AND expires > ?", (queue, *chunk, now)).fetchall())
            return found

        return self._db.read(read)

    def forget_cancel_request(self, queue: str, job_id: str) -> None:
        # Expired requests go too (a small table: requests live while their jobs run).
        self._db.write_one("DELETE FROM cancel_requests WHERE (queue = ? AND job_id = ?) OR "
                           "expires <= ?", (queue, job_id, time.time()))
