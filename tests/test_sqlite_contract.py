"""The broker contract suite on tinyq-sqlite: a fresh database file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
