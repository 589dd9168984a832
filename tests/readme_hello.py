"""The README's hello world through the real ``tinyq`` command, on any broker URI.

Shared by the single-server and the Cluster tests: the README's ``app.py`` as written there,
30 jobs enqueued from this process, a ``tinyq -l info -u <uri>`` worker, results, then
Ctrl+C."""

from __future__ import annotations

from pathlib import Path

from support.project import AppProject
from support.readme import readme_block

README_APP = readme_block("from tinyq_core import Application", "python")  # app.py


def run_readme_hello_world(tmp_path: Path, url: str) -> str:
    """Run it on ``url``; checks the results, the exit status and the log, returns the log."""
    with AppProject(tmp_path, README_APP) as project:
        project.app.use_broker(url)
        add = project.module.add
        handles = [add.delay(m, n) for m in range(10) for n in range(3)]
        proc = project.start("-l", "info", "-u", url, script=True)  # the README's command
        try:
            assert [h.result(timeout=20) for h in handles] == [
                m + n for m in range(10) for n in range(3)
            ]
        finally:
            out = project.stop(proc)
    assert proc.returncode == 0, out
    assert out.count("Got a job: <Job: id: ") == 30
    assert "task_name: app.add>" in out
    assert "Received stop signal, warm shutdown..." in out and "Exit workers." in out
    assert "Traceback" not in out
    return out
