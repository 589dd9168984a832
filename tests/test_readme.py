"""The README's commands, run as written in fresh venvs, as a newcomer would run them.

Each venv has no system site-packages and installs from the package index, as on a
newcomer's machine; the repository is copied first, so the tree under test stays clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer
from support.environment import child_env
from support.project import AppProject
from support.readme import ROOT, readme_block, readme_blocks

pytestmark = pytest.mark.process

FIRST_COMMAND = "pip install -e . && python examples/hello.py"
IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".mypy_cache",
    ".ruff_cache", ".hypothesis", ".venv", "tinyq.db*",
)

# A user's file: mypy must see tinyq_core's types through the install (py.typed, a path it
# can follow) to report the bad argument on line 11.
USER_FILE = '''\
from tinyq_core import Application

app = Application("memory://")


@app.task()
def add(m: int, n: int) -> int:
    return m + n


add.delay(1, "two")
'''


class Newcomer:
    """A copy of the repository and a fresh venv; ``sh`` runs a README line in the copy with
    the venv activated (its bin first on PATH, as ``source bin/activate`` does)."""

    def __init__(self, base: Path) -> None:
        self.repo = base / "tinyq"
        shutil.copytree(ROOT, self.repo, ignore=IGNORE)
        self.venv = base / "venv"
        venv.EnvBuilder(with_pip=True, system_site_packages=False).create(self.venv)
        self.python = self.venv / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_TARGET"))}
        env.pop("TINYQ_URL", None)
        self.env = {**env, "VIRTUAL_ENV": str(self.venv),
                    "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}

    def sh(self, line: str, timeout: float = 120) -> str:
        proc = subprocess.run(["bash", "-c", line], cwd=self.repo, env=self.env, text=True,
                              capture_output=True, timeout=timeout)
        assert proc.returncode == 0, f"{line!r} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    def mypy(self, tmp_path: Path) -> str:
        """mypy (the test's own) on USER_FILE against this venv's installed packages, from a
        folder without the repository's mypy configuration."""
        (tmp_path / "user.py").write_text(USER_FILE)
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
             "--python-executable", str(self.python), "user.py"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
        return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Newcomer, str]]:
    """The README's first newcomer command, run as written: (the newcomer, its output)."""
    newcomer = Newcomer(tmp_path_factory.mktemp("first"))
    assert readme_block(FIRST_COMMAND) == FIRST_COMMAND + "\n"
    yield newcomer, newcomer.sh(FIRST_COMMAND, timeout=240)


def test_the_first_command_installs_and_runs_the_hello_world(
    first_hour: tuple[Newcomer, str],
) -> None:
    newcomer, out = first_hour
    assert "add(9, 2) = 11" in out
    assert "all 30 jobs done" in out, out[-2000:]
    assert (newcomer.repo / "tinyq.db").exists()  # the embedded default, no server
    tinyq = newcomer.sh("tinyq --version")  # the console script of the editable install
    assert tinyq.startswith("tinyq ")


def test_mypy_sees_tinyq_types_after_the_readme_install(
    first_hour: tuple[Newcomer, str], tmp_path: Path
) -> None:
    """Failed before the root moved to hatchling: setuptools' editable install of four
    package folders is an import hook, and mypy said 'Cannot find implementation or library
    stub for module named "tinyq_core"', every type Any."""
    newcomer, _ = first_hour
    out = newcomer.mypy(tmp_path)
    assert "Cannot find implementation" not in out, out
    assert 'user.py:11: error: Argument 2 to "delay" of "Task" has incompatible type "str"; ' \
        'expected "int"' in out, out
    assert "Found 1 error" in out, out


def test_the_readme_install_lines_install_each_broker(tmp_path: Path) -> None:
    """Every ``pip install ./...`` line of the README's Install section, run as written in
    one venv: each installs tinyq-core and one broker package (non-editable wheels), which
    then run a job, and mypy sees their types (py.typed in each wheel)."""
    lines = [
        line for line in readme_block("pip install ./").splitlines() if line.strip()
    ]
    assert len(lines) == 3 and all(line.startswith("pip install ./") for line in lines)
    newcomer = Newcomer(tmp_path / "install")
    for line in lines:
        newcomer.sh(line)
    script = textwrap.dedent('''
        import sys
        import tinyq_core, tinyq_memory, tinyq_redis, tinyq_sqlite
        from tinyq_core import Application

        for module in (tinyq_core, tinyq_memory, tinyq_redis, tinyq_sqlite):
            assert module.__file__.startswith(sys.prefix), module.__file__  # not the copy
        app = Application("sqlite:///installed.db")

        @app.task()
        def add(m, n):
            return m + n

        h = add.delay(2, 3)
        app.worker(concurrency=1).run(burst=True)
        print("result", h.result(timeout=5))
    ''')
    (tmp_path / "check.py").write_text(script)
    out = subprocess.run([str(newcomer.python), str(tmp_path / "check.py")], cwd=tmp_path,
                         env=newcomer.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "result 5" in out.stdout, out.stdout + out.stderr
    assert 'incompatible type "str"; expected "int"' in newcomer.mypy(tmp_path)


def test_the_redis_example_runs(redis_server: RedisServer, tmp_path: Path) -> None:
    """examples/redis_hello.py, its worker started before the first result is awaited;
    TINYQ_URL points both its processes at the test's server over the code's ``redis://``."""
    prefix = f"?prefix=example{os.getpid()}"
    env = child_env({"TINYQ_URL": redis_server.url + prefix})
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "redis_hello.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "add(9, 2) = 11" in out.stdout
    assert f"127.0.0.1:{redis_server.port}" in out.stdout  # the variable's server, not :6379
    assert out.stdout.rstrip().endswith("all 30 jobs done")
    assert "Exit workers." in out.stderr


def test_the_readme_redis_steps_work_in_the_order_written(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """app.py, then the worker command, then the enqueue snippet (which waits on a result): in
    the README's order, each as written; TINYQ_URL points them at the test's server."""
    app_py = readme_block("from tinyq_core import Application", "python")
    worker_line = readme_block("tinyq ")
    enqueue = readme_block("from app import add", "python")
    blocks = readme_blocks()
    assert blocks.index(app_py) < blocks.index(worker_line) < blocks.index(enqueue)
    with AppProject(tmp_path, app_py, url=redis_server.url) as project:
        args = worker_line.split()
        assert args[0] == "tinyq"
        proc = project.start(*args[1:], script=True)
        try:
            script = project.write("enqueue.py", enqueue + "print(h.result(timeout=5))\n")
            out = subprocess.run([sys.executable, str(script)], cwd=project.path,
                                 env=project.env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr
            assert out.stdout.strip() == "3"
        finally:
            log = project.stop(proc)
    assert log.count("Got a job: ") == 31, log
