"""tinyq-sqlite: a broker and result backend on one SQLite file (``sqlite:///tinyq.db``),
for many producer and worker processes on one machine, with no server to run."""

from ._broker import SqliteBroker
from ._results import SqliteResultBackend

__all__ = ["SqliteBroker", "SqliteResultBackend"]
