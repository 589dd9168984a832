"""``--metrics-host``, and queue sizes that never hang a scrape when the broker does not
answer."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tinyq_core.contrib.prometheus import QueueSizeCollector
from tinyq_core.plugin import QueueCounts
from tinyq_memory import MemoryBroker
from tinyq_redis import RedisBroker

from redis_server import RedisServer, free_port
from support.project import AppProject
from support.waiting import wait_until

APP = '''
import os
from tinyq_core import Application

app = Application(os.environ.get("TINYQ_URL"))
'''


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    with AppProject(tmp_path, APP, url=redis_server.url) as p:
        yield p


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_metrics_host_chooses_the_address_listened_on(project: AppProject) -> None:
    port = free_port()
    # 127.0.0.2 is loopback too on Linux: served there, and not on 127.0.0.1.
    proc = project.start("-l", "info", "--metrics-port", str(port), "--metrics-host",
                         "127.0.0.2")

    def served() -> bool:
        try:
            return "tinyq_worker_up" in get(f"http://127.0.0.2:{port}/metrics")
        except OSError:
            return False

    wait_until(served, 30, message="metrics on 127.0.0.2")
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/metrics")
    assert f"http://127.0.0.2:{port}/metrics" in project.stop(proc)


def test_an_address_that_cannot_be_bound_is_one_line(project: AppProject) -> None:
    proc = project.start("--metrics-port", str(free_port()), "--metrics-host", "192.0.2.1",
                         "--burst")
    assert proc.wait(timeout=30) == 1
    out = project.output(proc)
    assert "cannot serve metrics on 192.0.2.1 port" in out and "Traceback" not in out


class Stuck:
    """A broker admin whose counts() does not answer until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def counts(self, queue: str) -> QueueCounts:
        self.calls += 1
        self.release.wait(30)
        return QueueCounts(ready=1, scheduled=0, leased=0, dead=0)


def test_a_scrape_does_not_wait_for_a_broker_that_does_not_answer() -> None:
    stuck = Stuck()
    collector = QueueSizeCollector(stuck, lambda: ["default"], max_age=0, timeout=0.2)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        for scrape in (1, 2):
            s = samples(registry)  # returned while the broker call is still blocked
            assert not stuck.release.is_set()
            assert "tinyq_queue_messages" not in s
            assert s["tinyq_queue_size_errors_total"] == [({}, float(scrape))]
        assert stuck.calls == 1  # one read in flight at most, however many scrapes
        stuck.release.set()
        wait_until(lambda: "tinyq_queue_messages" in samples(registry), 10,
                   message="the sizes once the broker answers")
        assert samples(registry)["tinyq_queue_messages"][0] == (
            {"queue": "default", "state": "ready"}, 1.0)
    finally:
        stuck.release.set()
        collector.close()


def test_a_redis_that_accepts_but_never_answers_leaves_the_sizes_out() -> None:
    silent = socket.socket()  # connections complete in its backlog; nothing ever replies
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    broker = RedisBroker(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    collector = QueueSizeCollector(broker, lambda: ["default"], timeout=0.5)
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        s = samples(registry)
        assert "tinyq_queue_messages" not in s
        assert s["tinyq_queue_size_errors_total"] == [({}, 1.0)]
    finally:
        silent.close()  # the pending connections are reset: the read ends
        collector.close()
        broker.close()


def test_a_broker_error_counts_too() -> None:
    broker = MemoryBroker()

    def fail(queue: str) -> QueueCounts:
        raise ConnectionError("down")

    broker.counts = fail  # type: ignore[method-assign]
    collector = QueueSizeCollector(broker, lambda: ["default"])
    registry = CollectorRegistry()
    registry.register(collector)
    s = samples(registry)
    assert "tinyq_queue_messages" not in s
    assert s["tinyq_queue_size_errors_total"] == [({}, 1.0)]
