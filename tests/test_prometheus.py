"""``tinyq --metrics-port``: Prometheus metrics scraped over HTTP from real worker processes."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tinyq_core import Application
from tinyq_core.contrib.prometheus import PrometheusMetrics
from tinyq_memory import MemoryBroker, drain

from redis_server import RedisServer, free_port
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os
from tinyq_core import Application

app = Application(os.environ.get("TINYQ_URL"))

@app.task(name="add")
def add(m, n):
    return m + n
'''


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    (tmp_path / "tmp").mkdir()
    env = {"TMPDIR": str(tmp_path / "tmp")}  # where -p N keeps its metrics files
    with AppProject(tmp_path, APP, url=redis_server.url, env=env) as p:
        yield p


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One GET of /metrics: each sample by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


def test_one_scrape_of_a_two_process_worker_counts_all_its_jobs(project: AppProject) -> None:
    port = free_port()
    handles = [project.module.add.delay(i, 1) for i in range(100)]
    proc = project.start("-p", "2", "-w", "4", "-l", "info", "--metrics-port", str(port))

    def counted() -> bool:
        try:
            s = scrape(port)
        except OSError:
            return False
        return total(s, "tinyq_jobs_total", outcome="succeeded") == 100 and \
            total(s, "tinyq_worker_up") == 2

    wait_until(counted, 60, message="100 jobs counted and 2 workers up")
    time.sleep(1.1)  # past the queue sizes' cache (1 s), read while the jobs still waited
    s = scrape(port)
    assert [h.result(10) for h in handles] == [i + 1 for i in range(100)]
    assert total(s, "tinyq_jobs_total", outcome="succeeded", task="add", queue="default") == 100
    assert total(s, "tinyq_jobs_total", outcome="failed") == 0
    assert total(s, "tinyq_job_run_seconds_count", task="add") == 100
    assert total(s, "tinyq_job_run_seconds_bucket", le="+Inf") == 100
    assert total(s, "tinyq_job_queue_wait_seconds_count", queue="default") == 100
    assert total(s, "tinyq_jobs_in_flight") == 0
    assert total(s, "tinyq_worker_up") == 2
    assert total(s, "tinyq_queue_messages", queue="default", state="ready") == 0
    assert ("tinyq_queue_messages", (("queue", "default"), ("state", "dead"))) in s
    folders = list((project.path / "tmp").glob("tinyq-metrics-*"))
    assert len(folders) == 1 and any(folders[0].iterdir())  # the children's files
    project.stop(proc)
    assert proc.returncode == 0
    assert not list((project.path / "tmp").glob("tinyq-metrics-*"))  # cleaned at exit


def test_a_single_worker_serves_its_own_metrics_with_queue_sizes(project: AppProject) -> None:
    port = free_port()
    project.module.add.delay(1, 2)
    project.module.add.apply_async((1, 2), countdown=3600)  # stays scheduled
    proc = project.start("-l", "info", "--metrics-port", str(port))

    def one() -> bool:
        try:
            return total(scrape(port), "tinyq_jobs_total", outcome="succeeded") == 1
        except OSError:
            return False

    wait_until(one, 30, message="the job counted")
    s = scrape(port)
    assert total(s, "tinyq_worker_up") == 1 and total(s, "tinyq_jobs_in_flight") == 0
    assert total(s, "tinyq_queue_messages", queue="default", state="scheduled") == 1
    project.stop(proc)


def test_without_prometheus_client_the_flag_says_what_to_install(
    project: AppProject, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "prometheus_client"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no', name='prometheus_client')\n")
    env = {"PYTHONPATH": f"{shadow.parent}:{project.env['PYTHONPATH']}"}
    proc = project.start("--metrics-port", str(free_port()), "--burst", env=env)
    assert proc.wait(timeout=30) == 1
    out = project.output(proc)
    assert "pip install 'tinyq-core[prometheus]'" in out and "Traceback" not in out


def test_the_plugin_counts_every_outcome_in_process() -> None:
    registry = CollectorRegistry()
    app = Application(MemoryBroker(), plugins=[PrometheusMetrics(registry)])

    @app.task(name="ok")
    def ok() -> int:
        return 1

    @app.task(name="flaky", max_retries=1, retry_backoff=0.01, retry_backoff_max=0.01)
    def flaky() -> None:
        raise ValueError("always")

    @app.task(name="slow", timeout=0.2, max_retries=0)
    async def slow() -> None:
        await asyncio.sleep(5)

    ok.delay(), flaky.delay(), slow.delay()
    ok.apply_async(expires=-1)  # expired before any worker saw it
    drain(app)
    app.close()

    def count(task: str, outcome: str) -> float:
        value = registry.get_sample_value(
            "tinyq_jobs_total", {"task": task, "queue": "default", "outcome": outcome})
        return value or 0.0

    assert count("ok", "succeeded") == 1 and count("ok", "failed") == 0
    assert count("ok", "expired") == 1
    assert count("flaky", "retried") == 1 and count("flaky", "failed") == 1
    assert count("flaky", "dead_lettered") == 1
    assert count("slow", "timed_out") == 1 and count("slow", "dead_lettered") == 1
    runs = registry.get_sample_value("tinyq_job_run_seconds_count",
                                     {"task": "flaky", "queue": "default"})
    assert runs == 2  # both runs of the retried job
    waits = registry.get_sample_value("tinyq_job_queue_wait_seconds_count",
                                      {"task": "flaky", "queue": "default"})
    assert waits == 1  # its first run only
    assert registry.get_sample_value("tinyq_jobs_in_flight",
                                     {"task": "slow", "queue": "default"}) == 0
