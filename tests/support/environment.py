"""The environment of the subprocesses tests start: they run the tinyq code this process runs."""

from __future__ import annotations

import os
import site
from collections.abc import Mapping, Sequence
from pathlib import Path

import tinyq_core
import tinyq_memory
import tinyq_redis
import tinyq_sqlite


def tinyq_code_path() -> list[str]:
    """The folders this process imported the tinyq packages from, unless they are
    site-packages (which a subprocess finds by itself and should not put before the standard
    library): a source checkout on PYTHONPATH, an editable install, or a worktree."""
    installed = {str(Path(p).resolve()) for p in site.getsitepackages()}
    folders = (str(Path(m.__file__ or "").resolve().parents[1])
               for m in (tinyq_core, tinyq_memory, tinyq_redis, tinyq_sqlite))
    return [f for f in dict.fromkeys(folders) if f not in installed]


def child_env(
    extra: Mapping[str, str] | None = None, *, path: Sequence[Path | str] = ()
) -> dict[str, str]:
    """This process's environment plus ``extra``, with PYTHONPATH set to ``path`` and the
    tinyq code folders only: whatever else PYTHONPATH held for the test run stays out, and the
    subprocess imports the same tinyq as the test, not another copy installed elsewhere."""
    env = {**os.environ, **(extra or {})}
    env.pop("PYTHONPATH", None)
    folders = [*map(str, path), *tinyq_code_path()]
    if folders:
        env["PYTHONPATH"] = os.pathsep.join(folders)
    return env
