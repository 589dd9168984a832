"""The async benchmarks' systems (benchmarks/async_drain.py, async_enqueue.py): every entry is
well formed, without the peers installed (CI never installs them)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from benchmarks import __main__ as bench_main
from benchmarks import async_drain, async_enqueue, peer_envs
from benchmarks._common import BenchError


def functions(source: str) -> set[str]:
    return {node.name for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_drainers_are_the_four_systems_at_their_default_concurrency() -> None:
    defaults = {name: d.default_concurrency for name, d in async_drain.DRAINERS.items()}
    assert defaults == {"tinyq": 100, "arq": 10, "taskiq": 100, "saq": 10}


@pytest.mark.parametrize("name", sorted(async_drain.DRAINERS))
def test_drainer_is_well_formed(name: str) -> None:
    drainer = async_drain.DRAINERS[name]
    assert drainer.venv is None if name == "tinyq" else drainer.venv in peer_envs.PEERS
    assert {"io", "setup", "fill", "rate", "work", "client"} <= functions(drainer.app)
    command = drainer.worker(Path("/venv/bin/python"), 37)
    assert command and all(isinstance(part, str) for part in command)
    # the concurrency reaches the worker: on its command line or through BENCH_CONCURRENCY
    settings = drainer.app.split("def work")[1].split("def setup")[0]
    assert "37" in command or "CONCURRENCY" in settings


def test_a_peer_runs_without_tinyqs_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/tinyq-core/src")
    peer = async_drain.environment(async_drain.DRAINERS["arq"], tmp_path, "redis://x/1", 10)
    tinyq = async_drain.environment(async_drain.DRAINERS["tinyq"], tmp_path, "redis://x/1", 10)
    assert peer["PYTHONPATH"] == str(tmp_path)
    assert tinyq["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/somewhere/tinyq-core/src"])
    assert peer["BENCH_CONCURRENCY"] == "10"


def test_spans_show_jobs_run_twice_and_refuse_lost_ones() -> None:
    spans = [b"0 1.0 1.5", b"1 1.2 2.0", b"1 1.3 2.5"]
    assert async_drain.check_spans("x", spans, 2) == (1.0, 2.5, 1)
    with pytest.raises(BenchError, match="1 of 3 jobs never ran"):
        async_drain.check_spans("x", spans, 3)


def test_enqueue_peers_are_well_formed() -> None:
    assert {venv for venv, _ in async_enqueue.PEERS.values()} == set(peer_envs.PEERS)
    for _, app in async_enqueue.PEERS.values():
        assert {"setup", "rate"} <= functions(app)


def test_missing_peer_venvs_are_skipped_with_how_to_create_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(peer_envs.ENV, str(tmp_path))
    assert async_drain.available(["tinyq", "saq"]) == ["tinyq"]
    assert "python -m benchmarks.peer_envs --peers saq" in capsys.readouterr().out
    assert set(async_enqueue.runners(10)) == set(async_enqueue.SYSTEMS)


def test_python_m_benchmarks_has_the_async_scenarios() -> None:
    args = bench_main.parse_args(["--systems", "tinyq", "--async", "--async-n", "50"])
    assert args.run_async and args.async_n == 50


@pytest.mark.redis
@pytest.mark.process
def test_tinyq_drains_and_enqueues_through_the_harness(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tinyq's app file runs: its jobs enqueued by a subprocess, drained by `--burst`, every
    span in; the enqueue scenario runs with no peer venv."""
    from benchmarks._redis_server import RedisServer

    monkeypatch.setenv(peer_envs.ENV, str(tmp_path))  # no peers
    server = RedisServer().start()
    try:
        first_to_last, from_spawn, again = async_drain.drain_once("tinyq", server, 30, 10)
        assert first_to_last > 0 and from_spawn is not None and again == 0
        table = async_enqueue.run(server, 20, 1)
        assert [line.split("|")[1].strip() for line in table[2:]] == list(async_enqueue.SYSTEMS)
    finally:
        server.close()
