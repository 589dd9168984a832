"""pytest fixtures for testing tinyq tasks on the memory broker (loaded through ``pytest11``).

``tinyq_app`` is a fresh application on a memory broker with a fake clock; to test the tasks of
your own application, point it at ``tinyq_broker``::

    @pytest.fixture(autouse=True)
    def _memory(tinyq_broker):
        app.use_broker(tinyq_broker)

``tinyq_worker`` runs ``tinyq_app``'s jobs in a background thread while the test runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tinyq_core import Application, Worker

from ._broker import MemoryBroker
from ._clock import FakeClock

# Seconds the tinyq_worker fixture waits for its worker to stop after the test: long enough for
# the test's jobs still running to finish (a warm stop waits for them).
STOP_TIMEOUT = 10.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tinyq_worker(**options): keyword arguments for the tinyq_worker fixture's "
        "tinyq_app.worker(...), e.g. concurrency=2, queues=['high', 'default']",
    )


@pytest.fixture
def tinyq_clock() -> FakeClock:
    """A clock that moves only when told to: ``tinyq_clock.advance(60)``."""
    return FakeClock()


@pytest.fixture
def tinyq_broker(tinyq_clock: FakeClock) -> MemoryBroker:
    """A fresh memory broker on the fake clock."""
    return MemoryBroker(clock=tinyq_clock)


@pytest.fixture
def tinyq_app(tinyq_broker: MemoryBroker) -> Iterator[Application]:
    """A fresh application on ``tinyq_broker``; run its jobs with ``tinyq_memory.drain(app)``."""
    app = Application(tinyq_broker)
    yield app
    app.close()


@pytest.fixture
def tinyq_worker(request: pytest.FixtureRequest, tinyq_app: Application) -> Iterator[Worker]:
    """A worker running ``tinyq_app``'s jobs in a background thread during the test, so that
    ``h.result(timeout=5)`` waits for a real worker; the fixture's value is that Worker.

    After the test it is stopped warm (running jobs finish) and its thread joined; the test
    fails if the thread is still running ``STOP_TIMEOUT`` seconds later (the worker is then
    stopped cold), or re-raises what ``run()`` raised.

    Options for ``tinyq_app.worker()`` come from a ``tinyq_worker`` marker on the test, its
    class or its module (``pytestmark``)::

        @pytest.mark.tinyq_worker(concurrency=2, queues=["high", "default"])
        def test_priority(tinyq_app, tinyq_worker): ...

    A marker, as ``django_db(transaction=True)`` configures pytest-django's database: most
    tests want one worker with the defaults and only name the fixture, and the few that need
    options state them beside the test. A factory fixture would add a call to every test;
    indirect parametrization is for running one test under several values.

    On the fake clock (``tinyq_clock``) jobs due now run at once and leases never expire;
    countdowns, etas and retries with backoff run when the test moves the clock past their
    due time (``tinyq_clock.advance(60)`` wakes the worker). To run your own application's
    jobs, override ``tinyq_app`` to return it, pointed at ``tinyq_broker``."""
    marker = request.node.get_closest_marker("tinyq_worker")
    worker = tinyq_app.worker(*marker.args, **marker.kwargs) if marker else tinyq_app.worker()
    ended: list[int | BaseException] = []

    def run() -> None:
        try:
            ended.append(worker.run())
        except BaseException as exc:  # for the test's teardown, not lost in this thread
            ended.append(exc)

    thread = threading.Thread(target=run, name="tinyq_worker", daemon=True)
    thread.start()
    yield worker
    worker.stop()
    broker = tinyq_app.broker
    if isinstance(broker, MemoryBroker):
        broker.interrupt_reserves()  # an idle worker is blocked in one: it sees the stop now
    thread.join(STOP_TIMEOUT)
    if thread.is_alive():
        worker.stop(cold=True)  # give its jobs back rather than leave it running
        thread.join(STOP_TIMEOUT)
        pytest.fail(
            f"the tinyq_worker thread did not end within {STOP_TIMEOUT:g} s of a warm stop "
            "after the test: a job was still running",
            pytrace=False,
        )
    if ended and isinstance(ended[0], BaseException):
        raise ended[0]
