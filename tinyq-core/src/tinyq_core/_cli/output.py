"""How admin commands print: aligned tables for people, one JSON document for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from .loading import CommandError


def emit_json(document: Any, compact: bool = False) -> None:
    """One JSON document on stdout; values JSON cannot hold (a task's odd return value) are
    written as their repr."""
    text = json.dumps(document, indent=None if compact else 2, default=repr, sort_keys=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_out(json_output: bool, document: Any, text: str) -> None:
    """``document`` as JSON with ``--json``, else ``text``."""
    if json_output:
        emit_json(document)
    else:
        print(text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers], *([_cell(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(_numeric(row[i]) for row in rows)
               for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [cell.rjust(width) if right else cell.ljust(width)
                 for cell, width, right in zip(row, widths, numeric, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _numeric(value: object) -> bool:
    """A count, a missing number, or text that starts like one (``200+``, ``1.5s``)."""
    if value is None or isinstance(value, int):
        return True
    return isinstance(value, str) and value[:1].isdigit()


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def age(seconds: float | None) -> str:
    """A duration the way a person reads it: ``0.4s``, ``12s``, ``5m03s``, ``2h07m``, ``3d04h``."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def since(when: float | None, now: float | None = None) -> float | None:
    """Seconds from the Unix time ``when`` to now; None when unknown."""
    if when is None:
        return None
    return (time.time() if now is None else now) - when


def timestamp(when: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``, with how long ago."""
    if when is None:
        return "-"
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    return f"{text} ({age(since(when))} ago)"


def pretty(value: Any) -> str:
    """A value as JSON when it can be (what ``send`` takes back), else its repr."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def confirm(question: str, action: str, yes: bool) -> bool:
    """Ask ``question [y/N]`` on the terminal unless ``yes``. Without a terminal to ask on,
    refuse (a script must say ``--yes`` to delete). The question goes to stderr, so stdout
    stays machine-readable."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CommandError(f"refusing to {action} without confirmation: stdin is not a "
                           "terminal to ask on; pass --yes")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
