"""Code in docs/ that a reader copies, run as written (or the facts it states, checked)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tinyq_core import Application
from tinyq_memory import FakeClock, MemoryBroker, drain

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def doc_block(name: str, starting: str) -> str:
    """The one python block of docs/``name`` whose first line starts with ``starting``."""
    found = [b for b in FENCE.findall((DOCS / name).read_text()) if b.startswith(starting)]
    assert len(found) == 1, f"docs/{name}: {len(found)} python blocks start with {starting!r}"
    return found[0]


def test_the_calling_and_enqueueing_example_of_tasks_md_runs() -> None:
    """Every job the example enqueues runs and succeeds: ``add.map`` once had an item of the
    wrong arity, a job that could only fail."""
    app = Application(MemoryBroker(clock=FakeClock()), queues=["urgent"])  # app.job looks there

    @app.task(name="add")
    def add(m: int, n: int) -> int:
        return m + n

    namespace: dict[str, Any] = {"add": add}
    exec(doc_block("tasks.md", "from datetime import"), namespace)
    # Not advancing the fake clock: moved to the 2030 eta, it would expire the results too.
    drain(app, ["default", "urgent"], advance_clock=False)
    assert namespace["h"].result(timeout=1) == 3
    assert len(namespace["h"].id) == 32 and int(namespace["h"].id, 16) >= 0  # 32 hex digits
    assert [h.result(timeout=1) for h in namespace["handles"]] == [3, 7]
    assert app.job("invoice-42").result(timeout=1) == 3


def test_the_dead_letter_fields_are_as_testing_md_says() -> None:
    """testing.md: a job whose 3 runs raised has ``attempts == 1`` (each retry is a new
    message), while its reason counts the runs."""
    text = (DOCS / "testing.md").read_text()
    assert "dead.attempts          # deliveries of the message it was on when it failed: 1" in text
    broker = MemoryBroker(clock=FakeClock())
    app = Application(broker)

    @app.task(name="pay", max_retries=2)
    def pay() -> None:
        raise ConnectionError("payment service down")

    h = pay.delay()
    drain(app)
    [dead] = broker.dead_letters("default")
    assert dead.message.id == h.id
    assert dead.reason == "failed after 3 attempt(s)"
    assert dead.error == "ConnectionError: payment service down"
    assert dead.attempts == 1


def test_the_plugin_examples_of_hooks_md_run() -> None:
    from tinyq_core import current_job

    namespace: dict[str, Any] = {}
    exec(doc_block("hooks.md", "import time\n\nfrom tinyq_core import Application"), namespace)
    exec(doc_block("hooks.md", "import time\nfrom collections.abc"), namespace)
    app, timings = namespace["app"], namespace["timings"]
    assert app.registry.hooks.succeeded  # the example application has the plugin
    seen: list[dict[str, str]] = []
    slow = Application(app.broker, plugins=[timings, namespace["SlowJobs"]()])

    @slow.task()
    def job() -> None:
        seen.append(dict(current_job().headers))

    job.delay()
    drain(slow)
    assert seen == [{"sent-by": "billing"}]
    assert timings.outcomes == {"succeeded": 1} and len(timings.waits) == 1


def test_the_running_job_example_of_tasks_md_runs(tmp_path: Any) -> None:
    app = Application(MemoryBroker())
    namespace: dict[str, Any] = {"app": app}
    exec(doc_block("tasks.md", "from tinyq_core import current_job"), namespace)
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(str(i) for i in range(250)))
    h = namespace["import_rows"].delay(str(rows))
    drain(app)
    assert h.result(0) == 250
    assert h.progress() == {"done": 200, "of": 250}
