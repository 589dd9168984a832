"""Test helpers for plugin authors: the broker contract suite every broker must pass."""

import pytest

# Before the imports: pytest then rewrites the suite's asserts, so failures show the values.
pytest.register_assert_rewrite(
    *(f"tinyq_core.testing.{name}" for name in (
        "contract", "_support", "_delivery", "_redelivery", "_waiting", "_settle", "_results",
        "_admin", "_lookup", "_registry", "_unique", "_schedules",
        "_cancel", "_limits", "_async", "_workflows",
    ))
)

from .contract import BrokerContract  # noqa: E402

__all__ = ["BrokerContract"]
