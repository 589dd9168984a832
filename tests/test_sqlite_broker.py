"""tinyq-sqlite beyond the contract: its URIs, the files it refuses (one clear error each),
durable enqueues, and writers in several threads on one file."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from tinyq_core import Application, BrokerError, ConfigurationError, Message, Result
from tinyq_sqlite import SqliteBroker, plugin
from tinyq_sqlite._options import parse
from tinyq_sqlite._schema import VERSION


def test_three_slashes_make_a_relative_path_and_four_an_absolute_one() -> None:
    assert parse("sqlite:///tinyq.db").path == "tinyq.db"
    assert parse("sqlite:///data/jobs.db").path == "data/jobs.db"
    assert parse("sqlite:////var/lib/app/jobs.db").path == "/var/lib/app/jobs.db"
    assert parse("sqlite:///my%20jobs.db?visibility_timeout=5").path == "my jobs.db"


@pytest.mark.parametrize("uri", ["sqlite://tinyq.db", "sqlite://host/tinyq.db", "sqlite:///",
                                 "sqlite:///data/", "sqlite:///:memory:"])
def test_uris_without_a_usable_file_name_are_refused(uri: str) -> None:
    with pytest.raises(ConfigurationError, match="bad SQLite URI"):
        parse(uri)


def test_options_are_read_and_checked() -> None:
    options = parse("sqlite:///x.db?visibility_timeout=2.5&busy_timeout=1&poll_interval=0.02"
                    "&synchronous=full")
    assert (options.visibility_timeout, options.busy_timeout, options.poll_interval,
            options.synchronous) == (2.5, 1.0, 0.02, "FULL")
    with pytest.raises(ConfigurationError, match="visibility_timeout must be a number"):
        parse("sqlite:///x.db?visibility_timeout=soon")
    with pytest.raises(ConfigurationError, match="more than 0"):
        parse("sqlite:///x.db?poll_interval=0")
    with pytest.raises(ConfigurationError, match="synchronous must be NORMAL or FULL"):
        parse("sqlite:///x.db?synchronous=OFF")


def test_an_unknown_option_suggests_the_closest_known_one() -> None:
    with pytest.raises(ConfigurationError, match=r"visiblity_timeout \(did you mean "
                                                 r"visibility_timeout\?\)"):
        plugin.make_broker("sqlite:///x.db?visiblity_timeout=5")


def test_the_plugin_registers_the_scheme(tmp_path: Path) -> None:
    app = Application(f"sqlite:///{tmp_path}/app.db", plugins=[plugin])
    try:
        assert isinstance(app.broker, SqliteBroker)
        assert app.broker.options.path == f"{tmp_path}/app.db"
    finally:
        app.close()


# -- files it refuses: one clear error each, not a traceback of sqlite3's --------------------


def _first_use_error(path: Path | str) -> str:
    broker = SqliteBroker(f"sqlite:///{path}")
    try:
        with pytest.raises(ConfigurationError) as info:
            broker.enqueue([Message("a", "default", b"x")])
        assert not isinstance(info.value.__cause__, sqlite3.Error)
        return str(info.value)
    finally:
        broker.close()


def test_a_path_in_a_missing_folder(tmp_path: Path) -> None:
    message = _first_use_error(tmp_path / "nowhere" / "tinyq.db")
    assert f"the folder {tmp_path / 'nowhere'} does not exist" in message
    assert not (tmp_path / "nowhere").exists()


def test_a_read_only_file(tmp_path: Path) -> None:
    path = tmp_path / "tinyq.db"
    SqliteBroker(f"sqlite:///{path}").ping()  # a good database...
    path.chmod(0o444)  # ...made read-only
    assert "not readable and writable" in _first_use_error(path)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"These are my notes, not a database. " * 100)
    assert "cannot be used as the SQLite broker's file" in _first_use_error(path)
    assert path.read_bytes().startswith(b"These are my notes")  # left as it was


def test_a_database_written_by_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "tinyq.db"
    SqliteBroker(f"sqlite:///{path}").ping()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tinyq_schema SET version = ?", (VERSION + 1,))
    conn.close()
    message = _first_use_error(path)
    assert f"schema version {VERSION + 1}" in message and "upgrade tinyq-sqlite" in message


def test_an_error_on_a_working_file_is_a_broker_error(tmp_path: Path) -> None:
    """A database dropped underneath a running broker: a BrokerError, not sqlite3's."""
    path = tmp_path / "tinyq.db"
    broker = SqliteBroker(f"sqlite:///{path}")
    broker.ping()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE jobs")
    conn.close()
    with pytest.raises(BrokerError, match="no such table"):
        broker.enqueue([Message("a", "default", b"x")])
    broker.close()


# -- behaviour the contract does not pin ---------------------------------------------------


def _statements(broker: SqliteBroker) -> list[str]:
    """The SQL this thread's connection runs from now on, as SQLite reports it."""
    seen: list[str] = []
    broker._db.connection().set_trace_callback(seen.append)
    return seen


def test_durable_enqueue_commits_with_a_full_sync_and_goes_back(tmp_path: Path) -> None:
    broker = SqliteBroker(f"sqlite:///{tmp_path}/tinyq.db")
    broker.ping()
    seen = _statements(broker)
    broker.enqueue([Message("a", "q", b"x")], durable=True)
    inserts = [i for i, sql in enumerate(seen) if "INTO jobs" in sql]
    assert len(inserts) == 1
    pragmas = [(i, sql) for i, sql in enumerate(seen) if "synchronous" in sql]
    assert pragmas == [(inserts[0] - 1, "PRAGMA synchronous=FULL"),
                       (inserts[0] + 1, "PRAGMA synchronous=NORMAL")]
    seen.clear()
    broker.enqueue([Message("b", "q", b"x")])
    assert not [sql for sql in seen if "synchronous" in sql]
    assert broker._db.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    broker.close()


def test_a_lone_enqueue_is_one_statement(tmp_path: Path) -> None:
    """delay()'s path: no BEGIN/COMMIT round trips, and the queue's row written once per
    connection, not per job (a lone INSERT is its own transaction)."""
    broker = SqliteBroker(f"sqlite:///{tmp_path}/tinyq.db")
    broker.enqueue([Message("a", "q", b"x")])
    seen = _statements(broker)
    broker.enqueue([Message("b", "q", b"x")])
    assert len(seen) == 1 and "INTO jobs" in seen[0]
    seen.clear()
    broker.enqueue([Message("c", "other", b"x")])  # a new queue: its row, then the job
    assert [("INTO queues" in sql, "INTO jobs" in sql) for sql in seen] == [
        (True, False), (False, True)]
    assert broker.queues() == ["other", "q"]
    broker.close()


def test_writers_in_many_threads_never_see_a_lock_error(tmp_path: Path) -> None:
    """Eight threads, each with its own connection, enqueueing and draining at once."""
    broker = SqliteBroker(f"sqlite:///{tmp_path}/tinyq.db?busy_timeout=0.01")
    errors: list[BaseException] = []
    got: list[str] = []

    def produce(n: int) -> None:
        try:
            for i in range(100):
                broker.enqueue([Message(f"{n}-{i}", "q", b"x")])
        except BaseException as exc:
            errors.append(exc)

    def consume() -> None:
        try:
            while len(got) < 400:
                deliveries = broker.reserve(["q"], 10, 0.2)
                broker.ack(deliveries)
                got.extend(d.id for d in deliveries)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(got) == sorted(f"{n}-{i}" for n in range(4) for i in range(100))
    broker.close()


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    broker = SqliteBroker(f"sqlite:///{tmp_path}/tinyq.db")
    broker.enqueue([Message("before", "q", b"x")])
    pid = os.fork()
    if pid == 0:  # the child: must not reuse the parent's connection
        try:
            broker.enqueue([Message("child", "q", b"x")])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert sorted(d.id for d in broker.reserve(["q"], 10, 0)) == ["before", "child"]
    broker.close()


def test_a_file_made_again_underneath_gets_its_tables_again(tmp_path: Path) -> None:
    """Every new connection checks the schema, not only a process's first one."""
    path = tmp_path / "tinyq.db"
    broker = SqliteBroker(f"sqlite:///{path}")
    broker.enqueue([Message("a", "q", b"x")])
    broker.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    broker.enqueue([Message("b", "q", b"x")])
    assert broker.queues() == ["q"]  # the new file's queue row: written again
    assert [d.id for d in broker.reserve(["q"], 10, 0)] == ["b"]
    broker.close()


def test_an_unverified_dead_letter_touches_nothing_else_under_its_id(tmp_path: Path) -> None:
    """A message that failed its signature check only claims its job id: dead-lettering it
    stores no result under that id, and requeueing it deletes none (the real job's)."""
    broker = SqliteBroker(f"sqlite:///{tmp_path}/tinyq.db")
    results = broker.result_backend()
    broker.enqueue([Message("forged", "q", b"evil"), Message("real", "q", b"ok")])
    forged, real = broker.reserve(["q"], 2, 0)
    broker.dead_letter(forged, "bad signature", result=Result("forged", b"failure", "q", ok=False),
                       result_ttl=60, verified=False)
    broker.dead_letter(real, "failed", result=Result("real", b"failure", "q", ok=False),
                       result_ttl=60)
    assert results.get("forged", queue="q") is None
    assert results.get("real", queue="q") == Result("real", b"failure", "q")
    results.store([Result("forged", b"the real job's", "q")], 60)
    assert broker.requeue_dead_letters("q") == 2
    assert results.get("forged", queue="q") == Result("forged", b"the real job's", "q")
    assert results.get("real", queue="q") is None  # requeued: waiting, not failed
    broker.close()


def test_a_version_1_file_is_migrated_keeping_its_jobs(tmp_path: Path) -> None:
    """And up to the latest version: the worker registry (2), job progress (3)."""
    from tinyq_sqlite._schema import MIGRATIONS

    path = tmp_path / "tinyq.db"
    conn = sqlite3.connect(path)  # as tinyq-sqlite 0.1 left it: schema 1, a job waiting
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("CREATE TABLE tinyq_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO tinyq_schema (version) VALUES (1)")
    conn.execute("INSERT INTO jobs (queue, id, body, due) VALUES ('default', 'old', x'00', 0)")
    conn.execute("INSERT INTO queues (name) VALUES ('default')")
    conn.commit()
    conn.close()
    broker = SqliteBroker(f"sqlite:///{path}")
    broker.record_worker("w1", b"record", 60)
    assert broker.worker_records() == [b"record"]
    assert broker.status("old") == "queued" and broker.queues() == ["default"]
    broker.result_backend().store_progress("old", "default", b"half", 60)
    assert broker.result_backend().progress("old", "default") == b"half"
    broker.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM tinyq_schema").fetchone() == (VERSION,)
    conn.close()
