"""The admin commands (``tinyq info|job|dead|purge|send``) and the worker's banner, end to end:
real ``tinyq`` processes against a real redis-server, and against the default SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_server import RedisServer
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os, time
from tinyq_core import Application

app = Application()  # $TINYQ_URL (the test's Redis), else tinyq.db here

@app.task()
def add(m, n):
    return m + n

@app.task()
def boom(x):
    raise ValueError(f"boom {x}")

@app.task()
def flaky(path):
    if not os.path.exists(path):
        raise RuntimeError("not yet")
    return "ok"

@app.task()
def nap(seconds):
    time.sleep(seconds)
    return seconds
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url, visibility_timeout=5)
    yield p
    p.close()


def tinyq(project: AppProject, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``tinyq`` command in the project folder, stdin not a terminal."""
    return subprocess.run(["tinyq", *args], cwd=project.path, env=project.env, text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def as_json(project: AppProject, *args: str) -> Any:
    done = tinyq(project, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # stdout holds the document and nothing else


def queue(info: Any, name: str = "default") -> dict[str, Any]:
    rows = [q for q in info["queues"] if q["queue"] == name]
    assert len(rows) == 1, info
    return rows[0]  # type: ignore[no-any-return]


def burst(project: AppProject) -> None:
    done = tinyq(project, "-w", "2", "--burst")
    assert done.returncode == 0, done.stderr


def test_info_after_enqueue_a_run_and_a_sigkill(project: AppProject) -> None:
    tasks = project.app.tasks
    handles = [tasks["app.add"].delay(i, i) for i in range(3)]
    tasks["app.add"].apply_async(args=(0, 0), countdown=600)
    info = as_json(project, "info")
    assert queue(info) == {**queue(info), "waiting": 4, "ready": 3, "scheduled": 1,
                           "running": 0, "dead": 0, "dead_exact": True}
    assert 0 <= queue(info)["oldest_age"] < 60
    assert info["workers"] == []

    worker = project.worker("-w", "2", "--heartbeat-interval", "0.5")
    assert [h.result(timeout=20) for h in handles] == [0, 2, 4]
    napping = tasks["app.nap"].delay(60)

    def busy() -> Any:
        info = as_json(project, "info")
        jobs = [j for w in info["workers"] for j in w["jobs"]]
        return info if [j["id"] for j in jobs] == [napping.id] else None

    wait_until(busy, 20, message="info to show the worker running the nap job")
    info = busy()
    assert queue(info)["ready"] == 0 and queue(info)["running"] == 1
    assert queue(info)["scheduled"] == 1 and queue(info)["oldest_age"] is not None
    (record,) = info["workers"]
    assert record["pid"] == worker.pid and record["state"] == "running"
    assert record["queues"] == ["default"] and record["concurrency"] == 2
    assert record["processed"] == 3 and record["failed"] == 0
    assert record["jobs"][0]["task"] == "app.nap" and record["jobs"][0]["runtime"] >= 0
    assert 0 <= record["heartbeat_age"] < 5

    text = tinyq(project, "info").stdout  # the same for people
    assert "QUEUE" in text and "SCHEDULED" in text and record["id"] in text
    assert f"job {napping.id} app.nap on default, running" in text

    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    wait_until(lambda: as_json(project, "info")["workers"] == [], 10,
               message="the killed worker to disappear (three missed heartbeats)")


def test_dead_requeue_then_the_job_succeeds(project: AppProject) -> None:
    flag = project.path / "fixed"
    handle = project.app.tasks["app.flaky"].delay(str(flag))
    burst(project)
    (letter,) = as_json(project, "dead", "ls", "default")
    assert letter["id"] == handle.id and letter["task"] == "app.flaky"
    assert letter["status"] == "failed" and "RuntimeError: not yet" in letter["error"]
    listing = tinyq(project, "dead", "ls", "default").stdout
    assert handle.id in listing and "app.flaky" in listing
    shown = tinyq(project, "dead", "show", "default", handle.id).stdout
    assert 'raise RuntimeError("not yet")' in shown and str(flag) in shown
    document = as_json(project, "dead", "show", "default", handle.id)
    assert document["args"] == [str(flag)] and document["dead_letter"]["attempts"] == 1
    assert 'raise RuntimeError("not yet")' in document["traceback"]

    flag.touch()
    assert as_json(project, "dead", "requeue", "default", "--id", handle.id) == {
        "queue": "default", "requeued": 1}
    assert as_json(project, "job", handle.id)["status"] == "queued"
    burst(project)
    assert handle.result(timeout=10) == "ok"
    job = as_json(project, "job", handle.id)
    assert job["status"] == "succeeded" and job["result"] == "ok"
    assert as_json(project, "dead", "ls", "default") == []
    gone = tinyq(project, "dead", "requeue", "default", "--id", handle.id)
    assert gone.returncode == 1 and "1 of the given ids are not dead letters" in gone.stderr


def test_dead_purge_deletes_only_the_given_ids(project: AppProject) -> None:
    flag = project.path / "never"
    doomed = project.app.tasks["app.flaky"].delay(str(flag))
    kept = project.app.tasks["app.flaky"].delay(str(flag))
    burst(project)
    assert {d["id"] for d in as_json(project, "dead", "ls", "default")} == {doomed.id, kept.id}
    refused = tinyq(project, "dead", "purge", "default", "--id", doomed.id)  # no terminal
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert as_json(project, "dead", "purge", "default", "--id", doomed.id, "--yes") == {
        "queue": "default", "deleted": 1}
    assert [d["id"] for d in as_json(project, "dead", "ls", "default")] == [kept.id]
    again = tinyq(project, "dead", "purge", "default", "--id", doomed.id, "--yes")
    assert again.returncode == 1 and "1 of the given ids are not dead letters" in again.stderr


def test_job_shows_a_failed_jobs_traceback(project: AppProject) -> None:
    handle = project.app.tasks["app.boom"].delay(7)
    waiting = tinyq(project, "job", handle.id).stdout
    assert "status    queued" in waiting and "args      [7]" in waiting
    assert "enqueued  " in waiting and "ago)" in waiting
    burst(project)
    text = tinyq(project, "job", handle.id).stdout
    assert "status    failed" in text and "task      app.boom" in text
    assert "error     ValueError: boom 7" in text
    assert "Traceback (most recent call last):" in text and 'raise ValueError(f"boom {x}")' in text
    job = as_json(project, "job", handle.id, "--queue", "default")
    assert job["status"] == "failed" and job["args"] == [7] and job["task"] == "app.boom"
    assert job["error_type"] == "ValueError" and "boom {x}" in job["traceback"]
    assert job["dead_letter"]["attempts"] == 1

    unknown = tinyq(project, "job", "no-such-id")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("tinyq: error: no job no-such-id in queue(s) default")
    assert len(unknown.stderr.splitlines()) == 1


def on_a_terminal(project: AppProject, answer: str, *args: str) -> tuple[int, str]:
    """``tinyq *args`` with a terminal on stdin, answering ``answer``; status and output."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(["tinyq", *args], cwd=project.path, env=project.env,
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        os.write(master, answer.encode() + b"\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    return proc.returncode, out


def test_purge_asks_refuses_without_a_terminal_and_works_with_yes(project: AppProject) -> None:
    for i in range(3):
        project.app.tasks["app.add"].delay(i, i)
    refused = tinyq(project, "purge", "default")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == ("tinyq: error: refusing to purge 3 waiting jobs from default "
                              "without confirmation: stdin is not a terminal to ask on; "
                              "pass --yes\n")
    code, out = on_a_terminal(project, "n", "purge", "default")
    assert code == 1 and "Purge 3 waiting jobs from default? [y/N]" in out
    assert project.app.broker.size("default") == 3  # type: ignore[attr-defined]
    code, out = on_a_terminal(project, "y", "purge", "default")
    assert code == 0 and "Purged 3 waiting jobs from default." in out, out
    assert project.app.broker.size("default") == 0  # type: ignore[attr-defined]
    project.app.tasks["app.add"].delay(1, 1)
    assert as_json(project, "purge", "default", "--yes") == {"queue": "default", "purged": 1}


def test_send_then_the_job_runs(project: AppProject) -> None:
    sent = tinyq(project, "send", "app.add", "[2, 3]")
    assert sent.returncode == 0, sent.stderr
    job_id = sent.stdout.strip()
    assert as_json(project, "job", job_id)["args"] == [2, 3]
    worker = project.worker("-w", "2", "-q", "default", "-q", "other")
    assert project.app.job(job_id).result(timeout=20) == 5
    waited = tinyq(project, "send", "app.add", "[4]", "--kwargs", '{"n": 5}', "--wait", "20")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.splitlines()[1] == "9"
    document = as_json(project, "send", "app.add", "[1, 1]", "--queue", "other", "--wait", "20")
    assert document["queue"] == "other" and document["result"] == 2
    assert document["status"] == "succeeded"
    failed = tinyq(project, "send", "app.boom", "[1]", "--wait", "20")
    assert failed.returncode == 1 and "ValueError: boom 1" in failed.stderr
    assert 'raise ValueError(f"boom {x}")' in failed.stderr
    project.stop(worker)
    for args, message in [
        (["[1,"], "tinyq: error: ARGS_JSON is not valid JSON"),
        (['{"m": 1}'], "tinyq: error: ARGS_JSON must be a JSON array"),
        (["[]", "--kwargs", "[1]"], "tinyq: error: --kwargs must be a JSON object"),
    ]:
        bad = tinyq(project, "send", "app.add", *args)
        assert bad.returncode == 1 and bad.stderr.startswith(message), bad.stderr
        assert len(bad.stderr.splitlines()) == 1 and bad.stdout == ""


def test_the_banner_hides_the_password(tmp_path: Path) -> None:
    server = RedisServer(extra=("--requirepass", "hunter2")).start()
    try:
        with AppProject(tmp_path, APP) as project:
            url = f"redis://:hunter2@127.0.0.1:{server.port}/0"
            worker = project.start("worker", "-l", "info", "-w", "3", "-q", "b", "-q", "a",
                                   "-u", url)
            wait_until(lambda: "Tasks: " in project.output(worker), 20, message="the banner")
            out = project.stop(worker)
    finally:
        server.close()
    assert "hunter2" not in out
    assert f"Broker: redis://:***@127.0.0.1:{server.port}/0" in out
    assert "Queues (in priority order): b, a" in out
    assert "Concurrency: 3 threads x 1 process" in out
    assert "Tasks: app.add, app.boom, app.flaky, app.nap" in out
    assert " - INFO - tinyq.runner[" in out and "WARNING" not in out


def test_processes_get_the_flags(project: AppProject) -> None:
    parent = project.start("worker", "-p", "2", "-w", "1", "-l", "info", "-q", "high",
                           "-q", "default", "--heartbeat-interval", "0.5")
    wait_until(lambda: len(as_json(project, "info")["workers"]) == 2, 30,
               message="both worker processes in the registry")
    workers = as_json(project, "info")["workers"]
    assert all(w["concurrency"] == 1 and w["queues"] == ["high", "default"] for w in workers)
    assert parent.pid not in {w["pid"] for w in workers}
    out = project.stop(parent)
    assert parent.returncode == 0, out
    assert out.count("Concurrency: 1 thread x 2 processes") == 2


def test_the_admin_commands_on_the_default_sqlite_file(tmp_path: Path) -> None:
    with AppProject(tmp_path, APP) as project:  # no URL: tinyq.db in the project folder
        ok = tinyq(project, "send", "app.add", "[20, 22]").stdout.strip()
        bad = tinyq(project, "send", "app.boom", "[2]").stdout.strip()
        assert queue(as_json(project, "info"))["ready"] == 2
        burst(project)
        assert (tmp_path / "tinyq.db").exists()
        assert as_json(project, "job", ok)["result"] == 42
        assert "ValueError: boom 2" in tinyq(project, "job", bad).stdout
        info = as_json(project, "info")
        assert queue(info)["ready"] == 0 and queue(info)["dead"] == 1
        assert info["broker"] == "sqlite:///tinyq.db"
        assert [d["id"] for d in as_json(project, "dead", "ls", "default")] == [bad]
        assert as_json(project, "dead", "purge", "default", "--yes")["deleted"] == 1


def test_info_watch_redraws_until_ctrl_c(project: AppProject) -> None:
    project.app.tasks["app.add"].delay(1, 2)
    watch = project.start("info", "--watch", "0.2", script=True, stderr_apart=True)
    wait_until(lambda: project.output(watch).count("Every 0.2s") >= 3, 20,
               message="three redraws")
    watch.send_signal(signal.SIGINT)
    assert watch.wait(10) == 0
    assert project.output(watch).count("QUEUE ") >= 3 and project.errors(watch) == ""
    lines = project.start("info", "--watch", "0.2", "--json", script=True, stderr_apart=True)
    wait_until(lambda: project.output(lines).count("\n") >= 3, 20, message="three documents")
    lines.send_signal(signal.SIGINT)
    assert lines.wait(10) == 0 and project.errors(lines) == ""
    documents = [json.loads(x) for x in project.output(lines).splitlines()]
    assert all(queue(d)["ready"] == 1 for d in documents)


def test_looking_at_the_default_file_where_there_is_none_says_so(tmp_path: Path) -> None:
    """Run in the wrong folder, a read-only command would create an empty tinyq.db there and
    report empty queues; it says where it looked instead."""
    env = {k: v for k, v in AppProject(tmp_path, "").env.items() if k != "TINYQ_URL"}
    (tmp_path / "app.py").unlink()
    for args in (["info"], ["job", "abc"], ["dead", "ls", "default"], ["purge", "x", "--yes"]):
        done = subprocess.run(["tinyq", *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr == ("tinyq: error: no tinyq.db here, the default broker's file: "
                               "run tinyq from your application's folder, pass -u URI, or set "
                               "$TINYQ_URL\n")
    assert not (tmp_path / "tinyq.db").exists()
    sent = subprocess.run(["tinyq", "send", "app.add", "[1, 2]"], cwd=tmp_path, env=env,
                          text=True, capture_output=True, timeout=60)
    assert sent.returncode == 0 and (tmp_path / "tinyq.db").exists()  # send creates it
