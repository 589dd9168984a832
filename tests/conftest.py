"""Shared fixtures, and the markers that split the suite into lanes.

Lanes (the markers are set below, from what each test uses; nobody has to remember them):

* ``python -m pytest``: everything but the long soak (``--run-slow`` adds it); the Redis
  tests start their own redis-server, and with CI=true a missing one fails instead of skipping.
* ``python -m pytest -n 4 -m "not redis and not process"``: the fast lane, no server and no
  subprocess (memory broker and fakeredis): about 16 s on 4 pytest-xdist workers (most of its
  time is waiting, not CPU), about 35 s without ``-n``.
* ``-m redis``: tests on a real redis-server; ``-m process``: tests that start subprocesses.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from redis_server import RedisServer

pytest_plugins = ["pytester"]  # tests of the tinyq_worker fixture run pytest inside pytest

# A test is marked ``redis`` when it talks to Redis over the network: to a redis-server (fakeredis
# does not count), or to a free port where none listens (``free_port``: the client then waits
# out its retries, seconds per call); and ``process`` when it starts subprocesses (the tinyq
# CLI, ``python -m``/``-c``, supervisors, wheel builds). Both by the fixtures it uses, directly
# or through other fixtures, or by the names its own code uses to start them inline.
REDIS_FIXTURES = {"redis_server", "tls_server", "locked_server", "outage_server", "cluster"}
REDIS_NAMES = {"RedisServer", "RedisClusterServers", "SentinelDeployment", "free_port"}
PROCESS_FIXTURES = {"project", "wheels", "installed_venv"}
PROCESS_NAMES = {"subprocess", "AppProject", "run_python", "run_readme_hello_world"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long soaks too")


def names_in_code(item: pytest.Item) -> set[str]:
    """The global and attribute names the test function's own body uses."""
    function = getattr(item, "function", None)
    code = getattr(inspect.unwrap(function), "__code__", None) if function else None
    return set(code.co_names) if code is not None else set()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="a long soak: run with --run-slow")
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        names = names_in_code(item)
        if fixtures & REDIS_FIXTURES or names & REDIS_NAMES:
            item.add_marker(pytest.mark.redis)
        if fixtures & PROCESS_FIXTURES or names & PROCESS_NAMES:
            item.add_marker(pytest.mark.process)
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _no_tinyq_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ``$TINYQ_URL`` would override every test application's URI (and so
    the subprocesses' too): each test that wants the variable sets it."""
    monkeypatch.delenv("TINYQ_URL", raising=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server for the whole test session (appendonly on)."""
    server = RedisServer(appendonly=True).start()
    yield server
    server.close()
