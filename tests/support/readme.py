"""The README's fenced code blocks, for the tests that run them as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks(lang: str | None = None) -> list[str]:
    """Every fenced block of README.md (of language ``lang`` when given), in order."""
    text = (ROOT / "README.md").read_text()
    return [body for tag, body in FENCE.findall(text) if lang is None or tag == lang]


def readme_block(starting: str, lang: str | None = None) -> str:
    """The one block whose first line starts with ``starting``."""
    found = [b for b in readme_blocks(lang) if b.startswith(starting)]
    assert len(found) == 1, f"README.md: {len(found)} blocks start with {starting!r}"
    return found[0]
