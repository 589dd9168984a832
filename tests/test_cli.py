"""The ``tinyq`` command, run as a real subprocess: flags, errors, logs and signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.project import AppProject
from support.waiting import wait_until

APP = '''
import atexit, json, os, sys, time
from tinyq_core import Application, BrokerUnavailable, Registry, hookimpl
from tinyq_memory import MemoryBroker

class DownBroker(MemoryBroker):
    def ping(self):
        raise BrokerUnavailable("connection refused")

@hookimpl
def tinyq_register(registry: Registry) -> None:
    registry.add_broker("down", lambda uri, **kw: DownBroker())

import tinyq_memory.plugin  # registered explicitly: some tests turn autoload off
app = Application("memory://", plugins=[sys.modules[__name__], tinyq_memory.plugin])
OUT = os.environ["OUT"]

@app.task()
def add(m, n):
    return m + n

@app.task()
def slow(seconds):
    open(os.path.join(OUT, "started"), "w").close()
    time.sleep(seconds)
    open(os.path.join(OUT, "finished"), "w").close()
    return seconds

handles = []
if os.environ.get("ENQUEUE") == "add":
    handles = [add.delay(m, n) for m in range(10) for n in range(3)]
elif os.environ.get("ENQUEUE") == "slow":
    handles = [slow.delay(float(os.environ.get("SECONDS", "2")))]
    handles += [add.delay(1, 1) for _ in range(3)]

@atexit.register
def report():
    broker = app.broker
    results = [h.result(0) if h.status() == "succeeded" else h.status() for h in handles]
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump({"results": results, "waiting": broker.size("default")}, f)
'''


@pytest.fixture
def project(tmp_path: Path) -> Iterator[AppProject]:
    (tmp_path / "out").mkdir()
    p = AppProject(tmp_path, APP, env={"OUT": str(tmp_path / "out")})
    yield p
    p.close()


def finish(
    project: AppProject, proc: subprocess.Popen[str], timeout: float = 30
) -> tuple[int, str]:
    """Wait for ``proc`` to exit; its exit status and output (stdout and stderr)."""
    code = proc.wait(timeout=timeout)
    return code, project.output(proc)


def report(project: AppProject) -> dict[str, object]:
    data: dict[str, object] = json.loads((project.path / "out" / "report.json").read_text())
    return data


def wait_for(path: Path, timeout: float = 15) -> None:
    wait_until(path.exists, timeout, message=f"{path} to appear")


def test_version(project: AppProject) -> None:
    code, out = finish(project, project.start("-V"))
    assert code == 0 and out.strip() == "tinyq 0.1.0"


def test_hello_world_burst(project: AppProject) -> None:
    code, out = finish(project, project.start("-l", "info", "--burst", env={"ENQUEUE": "add"}))
    assert code == 0, out
    assert report(project)["results"] == [m + n for m in range(10) for n in range(3)]
    assert "Starting TinyQ worker, version 0.1.0..." in out
    assert "Got a job: <Job: id: " in out and "task_name: app.add>" in out
    assert "Finish run job <Job: id: " in out
    assert "Exit workers." in out
    # The original tinyq's format: time - level - logger[line thread process] - message
    line = next(x for x in out.splitlines() if "Starting TinyQ" in x)
    assert " - INFO - tinyq.runner[line:" in line and " thread:MainThread(" in line
    assert " process:MainProcess(" in line


def banner(out: str) -> list[str]:
    """The start banner's lines, without their time, line number and process id."""
    lines = [x for x in out.splitlines() if " - tinyq.runner[" in x]
    return [x.split(" - ", 1)[1].split("[", 1)[0] + " - " + x.rsplit("] - ", 1)[1]
            for x in lines]


def test_the_banner_says_what_runs_where_at_info(project: AppProject) -> None:
    code, out = finish(project, project.start("-l", "info", "--burst", "-w", "3",
                                              "-q", "high", "-q", "default"))
    assert code == 0, out
    assert banner(out) == [
        "INFO - tinyq.runner - Starting TinyQ worker, version 0.1.0...",
        "INFO - tinyq.runner - Broker: memory://",
        "INFO - tinyq.runner - Queues (in priority order): high, default",
        "INFO - tinyq.runner - Concurrency: 3 threads x 1 process",
        "INFO - tinyq.runner - Tasks: app.add, app.slow",
        "WARNING - tinyq.runner - a memory:// broker lives in this process only: producers "
        "in other processes cannot reach it",
    ]


def test_tinyq_worker_is_the_explicit_form(project: AppProject) -> None:
    code, plain = finish(project, project.start("-l", "info", "--burst", "-w", "2",
                                                env={"ENQUEUE": "add"}))
    assert code == 0, plain
    code, explicit = finish(project, project.start("worker", "-l", "info", "--burst", "-w", "2",
                                                   env={"ENQUEUE": "add"}))
    assert code == 0, explicit
    assert banner(explicit) == banner(plain) and len(banner(plain)) == 6
    assert explicit.count("Finish run job") == plain.count("Finish run job") == 30
    code, out = finish(project, project.start("worker", "-h"))
    assert code == 0 and out.startswith("usage: tinyq worker [-h]") and "--burst" in out


def test_default_log_level_is_warn(project: AppProject) -> None:
    code, out = finish(project, project.start("--burst", env={"ENQUEUE": "add"}))
    assert code == 0
    # Starting and stopping are routine: info. The memory:// warning is not.
    assert "Starting TinyQ worker" not in out and "Exit workers." not in out
    assert "Got a job" not in out
    assert "a memory:// broker lives in this process only" in out


def test_warm_shutdown_finishes_the_running_job(project: AppProject) -> None:
    proc = project.start("-l", "info", "-w", "1", env={"ENQUEUE": "slow", "SECONDS": "1.5"})
    wait_for(project.path / "out" / "started")
    proc.send_signal(signal.SIGINT)
    code, out = finish(project, proc)
    assert code == 0, out
    assert "Received stop signal, warm shutdown..." in out
    assert (project.path / "out" / "finished").exists()
    data = report(project)
    assert data["results"][0] == 1.5  # type: ignore[index]
    # The add jobs were prefetched or still waiting: given back, none lost, none run.
    assert data["waiting"] == 3
    assert "Traceback" not in out


def test_sigterm_is_a_warm_shutdown_too(project: AppProject) -> None:
    proc = project.start("-w", "2", env={"ENQUEUE": "slow", "SECONDS": "1"})
    wait_for(project.path / "out" / "started")
    proc.send_signal(signal.SIGTERM)
    code, out = finish(project, proc)
    assert code == 0, out
    assert (project.path / "out" / "finished").exists()


def test_second_signal_is_a_cold_shutdown(project: AppProject) -> None:
    proc = project.start("-l", "info", "-w", "1", env={"ENQUEUE": "slow", "SECONDS": "30"})
    wait_for(project.path / "out" / "started")
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: "warm shutdown" in project.output(proc), 10,
               message="the worker to take the first signal")
    proc.send_signal(signal.SIGINT)
    code, out = finish(project, proc, timeout=15)
    assert code == 1, out
    assert "cold shutdown" in out
    assert not (project.path / "out" / "finished").exists()
    data = report(project)
    assert data["results"][0] == "queued"  # the running job was given back
    assert data["waiting"] == 4


def test_shutdown_timeout_bounds_the_wait(project: AppProject) -> None:
    proc = project.start("-w", "1", "--shutdown-timeout", "0.5",
                         env={"ENQUEUE": "slow", "SECONDS": "30"})
    wait_for(project.path / "out" / "started")
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, _ = finish(project, proc, timeout=15)
    assert time.monotonic() - started < 5
    assert code == 1
    assert report(project)["results"][0] == "queued"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "missing.app"], "cannot import 'missing' for -a missing.app: no module named"),
        (["-a", "app.nothing"], "module 'app' has no attribute 'nothing'"),
        (["-a", "app.add"], "app.add is a Task, not a tinyq Application"),
        (["-a", "app"], "is not of the form module.attribute"),
        (["-u", "nosuch://h"], "unknown broker URI scheme 'nosuch'"),
        (["-u", "redis://u:hunter2@h"], "pip install tinyq-redis"),
        (["-u", "down://"], "cannot reach the broker at down://"),
        (["--heartbeat-interval", "0"], "--heartbeat-interval must be more than 0 seconds"),
    ],
)
def test_bad_input_gets_one_clear_line(
    project: AppProject, args: list[str], message: str
) -> None:
    env = {"TINYQ_DISABLE_PLUGIN_AUTOLOAD": "1"} if "redis" in args[-1] else {}
    code, out = finish(project, project.start(*args, env=env))
    assert code == 1
    assert message in out
    assert "Traceback" not in out
    assert "hunter2" not in out
    errors = [line for line in out.splitlines() if line.startswith("tinyq: error:")]
    assert len(errors) == 1


def test_import_error_inside_the_app_says_why(project: AppProject) -> None:
    project.write("broken.py", "import no_such_dependency\napp = None\n")
    code, out = finish(project, project.start("-a", "broken.app"))
    assert code == 1
    assert "importing 'broken' failed" in out and "no_such_dependency" in out
    assert "Traceback" not in out
    code, out = finish(project, project.start("-a", "broken.app", "-v"))
    assert code == 1 and "Traceback" in out


def test_queue_flag_in_priority_order(project: AppProject) -> None:
    project.write("prio.py", '''
        import os
        from tinyq_core import Application
        app = Application("memory://")
        order = []
        @app.task()
        def note(x):
            order.append(x)
        for i in range(3):
            note.apply_async(args=("low",), queue="low")
            note.apply_async(args=("high",), queue="high")
        note.apply_async(args=("ignored",), queue="other")
        import atexit
        atexit.register(lambda: print("ORDER", order))
    ''')
    proc = project.start("-a", "prio.app", "-w", "1", "-q", "high", "-q", "low", "--burst")
    code, out = finish(project, proc)
    assert code == 0, out
    assert "ORDER ['high', 'high', 'high', 'low', 'low', 'low']" in out


PLAIN_BROKERS = '''
from tinyq_core import Application
from tinyq_core.plugin import Broker, BrokerAdmin
from tinyq_memory import MemoryBroker

class NoLookup(MemoryBroker):
    """The admin tier as first released: no message()/messages()."""
    message = BrokerAdmin.message
    messages = BrokerAdmin.messages

class Plain(Broker):
    """The required tier only: every call goes to a memory broker."""
    def __init__(self):
        self.inner = MemoryBroker()
    def enqueue(self, messages, *, durable=False):
        self.inner.enqueue(messages)
    def reserve(self, queues, count, timeout):
        return self.inner.reserve(queues, count, timeout)
    def renew(self, deliveries):
        return self.inner.renew(deliveries)
    def ack(self, deliveries):
        return self.inner.ack(deliveries)
    def nack(self, delivery, delay=0, body=None):
        self.inner.nack(delivery, delay, body)
    def dead_letter(self, delivery, reason, error="", **kw):
        self.inner.dead_letter(delivery, reason, error, **kw)
    def recover(self, queues):
        return self.inner.recover(queues)
    def move_due(self, queues):
        return self.inner.move_due(queues)
    def result_backend(self):
        return self.inner.result_backend()

plain = Application(Plain())
no_lookup = Application(NoLookup())
'''


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "-a", "brokers.plain"], "tinyq info needs a broker with the admin tier; "
                                          "Plain has none"),
        (["dead", "ls", "default", "-a", "brokers.plain"], "tinyq dead ls needs a broker "
                                                           "with the admin tier"),
        (["job", "x", "-a", "brokers.no_lookup"], "tinyq job needs a broker that can look up "
                                                  "messages; NoLookup cannot"),
        (["send", "t", "[1", "-a", "brokers.plain"], "ARGS_JSON is not valid JSON"),
        (["info", "-a", "nowhere.app"], "cannot import 'nowhere' for -a nowhere.app"),
        (["info", "--watch", "0", "-a", "brokers.no_lookup"], "--watch takes a number of "
                                                              "seconds above 0"),
    ],
)
def test_admin_commands_say_what_the_broker_lacks_in_one_line(
    project: AppProject, args: list[str], message: str
) -> None:
    project.write("brokers.py", PLAIN_BROKERS)
    done = project.run(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"tinyq: error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1
