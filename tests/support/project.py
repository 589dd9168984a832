"""An application in a folder of its own, run by real ``tinyq`` processes."""

from __future__ import annotations

import functools
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import redis

from tinyq_core import Application

from .environment import child_env


class AppProject:
    """A folder holding an application module (``app.py`` from ``source``) and the ``tinyq``
    processes started in it, each writing its output to a log file of its own.

    With ``url`` the project gets its own key prefix ``ns`` on that broker: :attr:`url` is
    ``url?visibility_timeout=...&prefix=<ns>`` plus ``query`` (say ``"&socket_timeout=1"``),
    and the app finds it in ``TINYQ_URL`` and the prefix in ``NS`` (for keys of its own).
    ``env`` adds variables for the app's processes, and for this one while it imports the app
    (:attr:`app`). Processes run the tinyq code the tests run (see :func:`child_env`)."""

    def __init__(
        self,
        path: Path,
        source: str,
        *,
        url: str | None = None,
        visibility_timeout: float = 1,
        query: str = "",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.module_name = "app"
        self.ns = uuid.uuid4().hex[:8]
        self.server_url = url
        self.url: str | None = None
        variables = dict(env or {})
        if url is not None:
            self.url = f"{url}?visibility_timeout={visibility_timeout:g}&prefix={self.ns}{query}"
            variables = {"TINYQ_URL": self.url, "NS": self.ns, **variables}
        self.variables = variables
        self.env = child_env(variables)
        self.procs: list[subprocess.Popen[str]] = []
        self._logs: dict[subprocess.Popen[str], tuple[Path, Path | None]] = {}
        self.write(f"{self.module_name}.py", source)

    def write(self, name: str, source: str) -> Path:
        """Write another file into the project (dedented); returns its path."""
        path = self.path / name
        path.write_text(textwrap.dedent(source))
        return path

    # -- the app in this process -------------------------------------------------------------

    @functools.cached_property
    def module(self) -> types.ModuleType:
        """The app module, imported into this process on first use (to enqueue jobs and read
        results) with the project's variables set while it is imported."""
        saved = {key: os.environ.get(key) for key in self.variables}
        os.environ.update(self.variables)
        sys.path.insert(0, str(self.path))
        sys.modules.pop(self.module_name, None)  # another test's app of the same name
        importlib.invalidate_caches()
        try:
            return importlib.import_module(self.module_name)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @functools.cached_property
    def app(self) -> Application:
        app = self.module.app
        assert isinstance(app, Application), f"{self.module_name}.app is {app!r}"
        return app

    @functools.cached_property
    def redis(self) -> redis.Redis:
        """A plain client of the project's Redis server, for the keys the app writes."""
        assert self.server_url is not None, "the project has no broker URL"
        return redis.Redis.from_url(self.server_url)

    # -- tinyq processes ---------------------------------------------------------------------

    def start(
        self,
        *args: str,
        script: bool = False,
        stderr_apart: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Start ``tinyq *args`` in the project folder: as ``python -m tinyq_core``, or with
        ``script`` as the installed ``tinyq`` command a user types. Its stdout and stderr go
        to one log file (:meth:`output`), or with ``stderr_apart`` to two (:meth:`errors`);
        files, because an unread pipe fills up and blocks the process's logging. ``env`` adds
        variables for this process only."""
        number = len(self.procs)
        out_path = self.path / f"tinyq{number}.log"
        err_path = self.path / f"tinyq{number}.err" if stderr_apart else None
        command = ["tinyq"] if script else [sys.executable, "-m", "tinyq_core"]
        # Append mode: the worker processes of a supervisor (-p) share its file.
        err_file: Any = open(err_path, "a") if err_path else nullcontext(subprocess.STDOUT)
        with open(out_path, "a") as out, err_file as err:
            proc = subprocess.Popen(
                [*command, *args], cwd=self.path, env={**self.env, **(env or {})}, text=True,
                stdout=out, stderr=err,
            )
        self.procs.append(proc)
        self._logs[proc] = (out_path, err_path)
        return proc

    def worker(self, *args: str) -> subprocess.Popen[str]:
        """A ``tinyq -l info`` worker: its log shows each job it gets and finishes."""
        return self.start("-l", "info", *args)

    def run(
        self, *args: str, script: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tinyq *args`` (see :meth:`start`) to its end; stdout and stderr captured."""
        command = ["tinyq"] if script else [sys.executable, "-m", "tinyq_core"]
        return subprocess.run([*command, *args], cwd=self.path, env=self.env, text=True,
                              capture_output=True, timeout=timeout)

    def output(self, proc: subprocess.Popen[str]) -> str:
        """What ``proc`` wrote so far (stdout, and stderr unless kept apart)."""
        return self._read(self._logs[proc][0])

    def errors(self, proc: subprocess.Popen[str]) -> str:
        """What ``proc`` started with ``stderr_apart`` wrote to stderr so far."""
        path = self._logs[proc][1]
        assert path is not None, "this process's stderr is in its output"
        return self._read(path)

    def stop(self, proc: subprocess.Popen[str], timeout: float = 20) -> str:
        """Ctrl+C (a warm shutdown), wait for the exit and return the output."""
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=timeout)
        return self.output(proc)

    @staticmethod
    def _read(path: Path) -> str:
        # Bytes decoded leniently: a process killed mid-write may leave half a character.
        return path.read_bytes().decode(errors="replace")

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Kill the processes still running, close the app and the client, unimport the app."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if "app" in self.__dict__:
            self.app.close()
        if "redis" in self.__dict__:
            self.redis.close()
        if "module" in self.__dict__:
            if str(self.path) in sys.path:
                sys.path.remove(str(self.path))
            sys.modules.pop(self.module_name, None)

    def __enter__(self) -> AppProject:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

