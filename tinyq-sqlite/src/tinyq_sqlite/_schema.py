"""The database's tables, and the migrations that bring an older file up to date.

``tinyq_schema`` holds one row: the version of the layout below. Opening a file runs the
migrations it lacks, in one write transaction (so two processes opening a new file at once do
it once); a file written by a newer tinyq-sqlite is refused rather than guessed at.

Jobs live in one table whatever their state: ``state`` is 0 (waiting) or 1 (leased). A
waiting job is delivered once ``due`` has passed, oldest ``due`` first (ties by ``seq``, the
enqueue order): so a delayed job needs no mover, a recovered or nacked one goes to the back
of its queue by setting ``due`` to now, and ``status`` tells "queued" from "scheduled" by
comparing ``due`` with the clock. ``lease_no`` counts the job's leases; a delivery's receipt is
``"<seq>:<lease_no>"``, so every change keyed by it touches only the lease it was given for.
"""

from __future__ import annotations

import sqlite3

from tinyq_core.plugin import ConfigurationError

WAITING, LEASED = 0, 1

# Each entry takes the schema from version i to i + 1; append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- enqueue order, never reused
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        body BLOB NOT NULL,
        state INTEGER NOT NULL DEFAULT 0,       -- 0 waiting (due or delayed), 1 leased
        due REAL NOT NULL,                      -- waiting: deliverable from this Unix time
        lease_expires REAL,                     -- leased: recoverable from this Unix time
        lease_no INTEGER NOT NULL DEFAULT 0,    -- leases so far: the receipt's second half
        attempts INTEGER NOT NULL DEFAULT 0,    -- deliveries since enqueue or nack
        UNIQUE (queue, id)
    );
    CREATE INDEX jobs_waiting ON jobs (queue, state, due, seq);
    CREATE INDEX jobs_leases ON jobs (state, lease_expires);
    CREATE TABLE dead_letters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        body BLOB NOT NULL,
        reason TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        failed_at REAL NOT NULL,
        verified INTEGER NOT NULL               -- 0: the id was a claim (bad signature)
    );
    CREATE INDEX dead_letters_queue ON dead_letters (queue, seq);
    CREATE TABLE results (
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        body BLOB NOT NULL,
        ok INTEGER NOT NULL,                    -- a failure never replaces a success
        expires REAL NOT NULL,
        PRIMARY KEY (queue, job_id)
    );
    CREATE INDEX results_expiry ON results (expires);
    CREATE TABLE queues (name TEXT PRIMARY KEY);  -- every queue ever used, for queues()
    """,
    # 1 -> 2: the worker registry (WorkerRegistry): each live worker's latest record.
    """
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        record BLOB NOT NULL,
        expires REAL NOT NULL                   -- Unix time: forgotten from then on
    );
    CREATE INDEX workers_expiry ON workers (expires);
    """,
    # 2 -> 3: running jobs' progress (ResultBackend.store_progress), beside their results.
    """
    CREATE TABLE progress (
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        body BLOB NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (queue, job_id)
    );
    CREATE INDEX progress_expiry ON progress (expires);
    """,
    # 3 -> 4: periodic schedules' last ticks (ScheduleRecords), cancel requests
    # (CancelRequests) and unique jobs' locks (UniqueLocks).
    """
    CREATE TABLE schedule_ticks (
        queue TEXT NOT NULL,
        schedule TEXT NOT NULL,
        tick REAL NOT NULL,                     -- the last tick enqueued (Unix time)
        PRIMARY KEY (queue, schedule)
    );
    CREATE TABLE cancel_requests (
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        grace REAL,                             -- NULL: never interrupted
        expires REAL NOT NULL,
        PRIMARY KEY (queue, job_id)
    );
    CREATE TABLE unique_locks (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        owner TEXT NOT NULL,                    -- the job id holding it
        keep_until REAL,                        -- held until then once its job finished
        expires REAL NOT NULL,                  -- the record's bound (UniqueLocks ttl)
        PRIMARY KEY (queue, key)
    );
    """,
    # 4 -> 5: rate and concurrency limits (JobLimits).
    """
    CREATE TABLE rate_limits (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        tat REAL NOT NULL,                      -- the slot after the last one booked (GCRA)
        PRIMARY KEY (queue, key)
    );
    CREATE TABLE rate_bookings (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        token TEXT NOT NULL,                    -- names a booking: asked again, the same slot
        slot REAL NOT NULL,
        PRIMARY KEY (queue, key, token)
    );
    CREATE INDEX rate_bookings_slot ON rate_bookings (slot);
    CREATE TABLE limit_slots (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        holder TEXT NOT NULL,                   -- the job id running in this slot
        expires REAL NOT NULL,                  -- its lease: free after this Unix time
        PRIMARY KEY (queue, key, holder)
    );
    """,
    # 5 -> 6: chord records (ChordRecords): a chord's members done, one row each, so a report
    # sent twice adds nothing; ``done`` counts only the rows added.
    """
    CREATE TABLE chords (
        queue TEXT NOT NULL,
        chord_id TEXT NOT NULL,
        done INTEGER NOT NULL,                  -- members recorded
        expires REAL NOT NULL,
        PRIMARY KEY (queue, chord_id)
    );
    CREATE TABLE chord_members (
        queue TEXT NOT NULL,
        chord_id TEXT NOT NULL,
        member INTEGER NOT NULL,
        PRIMARY KEY (queue, chord_id, member)
    );
    """,
    # 6 -> 7: jobs waiting for a concurrency slot (JobLimits.wakes_slot_waiters), woken in
    # the order they first waited.
    """
    CREATE TABLE limit_waiters (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        holder TEXT NOT NULL,                   -- the job id waiting (delayed) for a slot
        since REAL NOT NULL,                    -- when it first waited
        PRIMARY KEY (queue, key, holder)
    );
    CREATE INDEX limit_waiters_order ON limit_waiters (queue, key, since);
    """,
)
VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int | None:
    """The file's schema version; None for a file without tinyq's tables (new, or empty)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tinyq_schema'").fetchone()
    if found is None:
        return None
    row = conn.execute("SELECT version FROM tinyq_schema").fetchone()
    return None if row is None else int(row[0])


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema to :data:`VERSION`; the caller holds a write transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS tinyq_schema (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM tinyq_schema").fetchone()
    version = 0 if row is None else int(row[0])
    if version > VERSION:
        raise ConfigurationError(
            f"{path} was written by a newer tinyq-sqlite (schema version {version}; this one "
            f"knows up to {VERSION}): upgrade tinyq-sqlite in every process using it"
        )
    if version == VERSION:
        return
    for script in MIGRATIONS[version:]:
        # executescript would COMMIT the caller's transaction: run statement by statement.
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
    if row is None:
        conn.execute("INSERT INTO tinyq_schema (version) VALUES (?)", (VERSION,))
    else:
        conn.execute("UPDATE tinyq_schema SET version = ?", (VERSION,))
