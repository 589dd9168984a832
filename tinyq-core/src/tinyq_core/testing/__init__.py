"""Test helpers for plugin authors: the broker contract suite every broker must pass."""

import pytest

# Before the import: pytest then rewrites the suite's asserts, so failures show the values.
pytest.register_assert_rewrite("tinyq_core.testing.contract")

from .contract import BrokerContract  # noqa: E402

__all__ = ["BrokerContract"]
