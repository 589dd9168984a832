"""Waiting for a condition another thread or process brings about."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    *,
    interval: float = 0.02,
    message: str = "the condition",
) -> None:
    """Call ``predicate`` every ``interval`` seconds until it is true; fail the test when it is
    still false after ``timeout`` seconds, saying what was waited for (``message``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)
