"""The README's hello world through the real ``tinyq`` command, on any broker URI.

Shared by the single-server and the Cluster tests: the README's ``app.py`` exactly, 30 jobs
enqueued from this process, a ``tinyq -l info -u <uri>`` worker, results, then Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

README_APP = '''
    from tinyq_core import Application

    app = Application("redis://")


    @app.task()
    def add(m, n):
        return m + n
'''


def run_readme_hello_world(tmp_path: Path, url: str) -> str:
    """Run it on ``url``; checks the results, the exit status and the log, returns the log."""
    (tmp_path / "app.py").write_text(textwrap.dedent(README_APP))
    sys.path.insert(0, str(tmp_path))
    try:
        import app as hello  # type: ignore[import-not-found]

        hello.app.use_broker(url)
        handles = [hello.add.delay(m, n) for m in range(10) for n in range(3)]
        env = {**os.environ}
        env.pop("PYTHONPATH", None)
        proc = subprocess.Popen(["tinyq", "-l", "info", "-u", url], cwd=tmp_path, env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert [h.result(timeout=20) for h in handles] == [
                m + n for m in range(10) for n in range(3)
            ]
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=20)
        hello.app.close()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("app", None)
    assert proc.returncode == 0, out
    assert out.count("Got a job: <Job: id: ") == 30
    assert "task_name: app.add>" in out
    assert "Received stop signal, warm shutdown..." in out and "Exit workers." in out
    assert "Traceback" not in out
    return out
