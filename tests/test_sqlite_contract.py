"""The broker contract suite on tinyq-sqlite: a fresh database file per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tinyq_core import Broker
from tinyq_core.testing import BrokerContract
from tinyq_sqlite import SqliteBroker


class TestSqliteBroker(BrokerContract):
    @pytest.fixture
    def broker(self, tmp_path: Path) -> Iterator[SqliteBroker]:
        broker = SqliteBroker(f"sqlite:///{tmp_path}/tinyq.db?visibility_timeout=0.5")
        yield broker
        broker.close()

    @pytest.fixture
    def second_broker(self, broker: SqliteBroker) -> Iterator[SqliteBroker]:
        """Another process's view: its own connections to the same file."""
        second = SqliteBroker(broker.uri)
        yield second
        second.close()

    @pytest.fixture
    def refusing_broker(
        self, broker: SqliteBroker
    ) -> Iterator[tuple[Broker, Callable[[], None]]]:
        """A file that may grow by 40 pages only (SQLite's max_page_count, per connection:
        the test's thread's), about 2,000 small jobs: SQLITE_FULL, as a full disk."""
        conn = broker._db.connection()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 40}")
        yield broker, lambda: conn.execute("PRAGMA max_page_count = 1073741823")
