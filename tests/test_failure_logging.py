"""A failing job's traceback reaches the worker log: at ERROR when the job fails for good, while
a retry is one WARNING line (its traceback only with debug logging, the CLI's ``-v``)."""

from __future__ import annotations

import logging

import pytest

from tinyq_core import Application
from tinyq_memory import FakeClock, MemoryBroker, drain


def make_app() -> Application:
    return Application(MemoryBroker(clock=FakeClock()))


def boom(n: int) -> int:
    raise ValueError(f"no good: {n}")  # the raising line the log must show


def worker_log(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("tinyq.worker")]


def test_a_job_that_fails_for_good_logs_its_traceback_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    task = app.task(name="boom")(boom)
    task.delay(7)
    with caplog.at_level(logging.WARNING, logger="tinyq"):
        drain(app)
    errors = [r for r in worker_log(caplog) if r.levelno == logging.ERROR]
    assert len(errors) == 1, caplog.text
    assert "no good: 7" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert 'raise ValueError(f"no good: {n}")' in caplog.text  # the traceback's raising line
    assert "Traceback (most recent call last)" in caplog.text


def test_a_retry_is_one_warning_line_and_its_traceback_shows_only_with_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    task = app.task(name="boom", max_retries=1, retry_backoff=0)(boom)
    task.delay(1)
    with caplog.at_level(logging.INFO, logger="tinyq"):
        drain(app)
    retries = [r for r in worker_log(caplog) if "Retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING], caplog.text
    assert "ValueError: no good: 1" in retries[0].getMessage()
    assert retries[0].exc_info is None  # one line at the default level
    # The final failure after the retry carries the traceback all the same.
    assert caplog.text.count("Traceback (most recent call last)") == 1

    caplog.clear()
    task.delay(2)
    with caplog.at_level(logging.DEBUG, logger="tinyq"):
        drain(app)
    retries = [r for r in worker_log(caplog) if "Retrying" in r.getMessage()]
    assert len(retries) == 1 and retries[0].exc_info is not None, caplog.text
    assert caplog.text.count('raise ValueError(f"no good: {n}")') == 2  # retry, then failure


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


def test_an_exception_that_cannot_be_printed_is_still_logged_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The retry line describes the error without ``str()`` raising out of the worker, and the
    final failure still reaches the producer."""
    app = make_app()

    @app.task(name="unprintable", max_retries=1, retry_backoff=0)
    def unprintable() -> None:
        raise Unprintable()

    h = unprintable.delay()
    with caplog.at_level(logging.WARNING, logger="tinyq"):
        drain(app)
    retries = [r.getMessage() for r in worker_log(caplog) if "Retrying" in r.getMessage()]
    assert len(retries) == 1 and "Unprintable: <str() of the exception failed" in retries[0]
    assert h.status() == "failed"
    assert "raise Unprintable()" in caplog.text
