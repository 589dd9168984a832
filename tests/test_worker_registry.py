"""The worker registry seen from the application (memory broker, workers in threads): what a
worker records, when, and that it is gone after a stop; known queues; ``app.job`` across
applications. Worker processes on Redis: tests/test_redis_registry.py."""

from __future__ import annotations

import json
import logging
import threading
import time

import attrs
import pytest
from test_contract_tiers import RequiredOnlyBroker

from tinyq_core import Application, ConfigurationError, Job
from tinyq_core._registry import decode_workers, encode_worker
from tinyq_core.plugin import CurrentJob, WorkerInfo
from tinyq_memory import FakeClock, MemoryBroker

from support.waiting import wait_until
from support.worker_thread import running_worker

BEAT = 0.1  # heartbeat_interval of the tests' workers


def _blocking_app() -> tuple[Application, threading.Event]:
    app = Application(MemoryBroker(visibility_timeout=5))
    release = threading.Event()

    @app.task(name="tests.wait")
    def wait() -> None:
        assert release.wait(10)

    @app.task(name="tests.fail")
    def fail() -> None:
        raise ValueError("no")

    return app, release


def test_a_worker_lists_its_running_job_then_counts_it() -> None:
    app, release = _blocking_app()
    assert app.workers() == []
    handle = app.tasks["tests.wait"].delay()
    with running_worker(app, concurrency=2, queues=["default", "low"],
                        heartbeat_interval=BEAT) as worker:
        wait_until(lambda: [w.jobs for w in app.workers()] not in ([], [()]),
                   message="the worker's record with its job")
        [info] = app.workers()
        assert worker.heartbeat is not None and info.id == worker.heartbeat.worker_id
        assert (info.queues, info.concurrency, info.state) == (("default", "low"), 2, "running")
        assert info.id.startswith(f"{info.host}:{info.pid}:")
        [job] = info.jobs
        assert (job.id, job.task, job.queue) == (handle.id, "tests.wait", "default")
        assert info.started_at <= job.started_at <= info.heartbeat_at
        assert (info.processed, info.failed) == (0, 0)
        release.set()
        handle.result(5)
        app.tasks["tests.fail"].delay()
        wait_until(lambda: [(w.processed, w.failed, w.jobs) for w in app.workers()]
                   == [(2, 1, ())], message="processed=2, failed=1, no job")
        first = app.workers()[0].heartbeat_at
        wait_until(lambda: app.workers()[0].heartbeat_at > first, message="another beat")
    assert app.workers() == []  # removed on a clean stop


def test_a_warm_stop_is_recorded_at_once_then_the_worker_is_gone() -> None:
    app, release = _blocking_app()
    handle = app.tasks["tests.wait"].delay()
    with running_worker(app, heartbeat_interval=60) as worker:  # no beat would come soon
        wait_until(lambda: app.broker.status(handle.id, "default") == "started")
        worker.stop()
        wait_until(lambda: [w.state for w in app.workers()] == ["stopping"],
                   message='state "stopping"')
        [info] = app.workers()
        assert [j.id for j in info.jobs] == [handle.id]  # its job is finishing
        release.set()
    assert handle.result(0) is None
    assert app.workers() == []


def test_a_dead_worker_disappears_after_three_intervals() -> None:
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    ttls = []
    real = broker.record_worker
    broker.record_worker = lambda i, r, ttl: (ttls.append(ttl), real(i, r, ttl))[1]  # type: ignore[method-assign]
    app = Application(broker)
    with running_worker(app, heartbeat_interval=2.0):
        wait_until(lambda: ttls, message="a heartbeat")
        assert ttls[0] == 6.0
        # A worker that stops beating (killed) is forgotten once its ttl passed.
        broker.record_worker = lambda i, r, ttl: None  # type: ignore[method-assign]
        assert len(app.workers()) == 1
        clock.advance(6.1)
        assert app.workers() == []


def test_a_broker_outage_does_not_stop_the_heartbeat(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = _blocking_app()
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    with running_worker(app, heartbeat_interval=BEAT):
        wait_until(lambda: app.workers() != [], message="the first beat")
        with caplog.at_level(logging.WARNING, logger="tinyq.worker"):
            broker.set_available(False)
            broker._workers.clear()  # what a restarted server would have lost
            wait_until(lambda: "Broker error" in caplog.text, message="the outage logged")
            threading.Event().wait(5 * BEAT)  # several failed beats
            broker.set_available(True)
        wait_until(lambda: app.workers() != [], message="a beat after the outage")
    assert caplog.text.count("Broker error") == 1  # logged once, not per beat
    assert caplog.text.count("Could not record worker") == 1  # the heartbeat's own, once too


def test_a_broker_without_the_registry_runs_workers_and_says_so() -> None:
    app = Application(RequiredOnlyBroker(FakeClock()))
    done = []

    @app.task(name="tests.note")
    def note() -> None:
        done.append(1)

    note.delay()
    with running_worker(app, burst=True, heartbeat_interval=BEAT) as worker:
        pass
    assert done == [1] and worker.heartbeat is None
    with pytest.raises(ConfigurationError, match="keeps no worker registry"):
        app.workers()


def test_heartbeat_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        Application("memory://").worker(heartbeat_interval=0)


def test_records_decode_tolerantly() -> None:
    info = WorkerInfo(id="h:1:ab", host="h", pid=1, version="0.1.0", queues=("a",),
                      concurrency=2, started_at=1.0, heartbeat_at=2.0, processed=3,
                      failed=1, state="stopping",
                      jobs=(CurrentJob(id="j", task="t", queue="a", started_at=1.5),),
                      cancelled=1, expired=1)
    newer = json.loads(encode_worker(info))
    newer.update(id="a:2:cd", host="a", pid=2, future_field=[1, 2])  # from a newer worker
    del newer["processed"]  # an older one: the default
    records = [encode_worker(info), b"not json", b'{"id": "x"}', json.dumps(newer).encode()]
    assert decode_workers(records) == [
        attrs.evolve(info, id="a:2:cd", host="a", pid=2, processed=0), info]


def test_app_job_finds_a_job_in_a_queue_it_does_not_name() -> None:
    broker = MemoryBroker()
    sender = Application(broker)

    @sender.task(name="elsewhere.task", queue="other")
    def task() -> None: ...

    handle = task.delay()
    reader = Application(broker)  # never names "other"
    assert "other" not in reader.known_queues()
    found = reader.job(handle.id)
    assert found.status() == "queued" and found.queue == "other"
    broker.purge("other")
    assert reader.job(handle.id).status() == "unknown"
    assert reader.queues() == ["default", "other"]  # known though empty


def test_the_producer_records_when_a_job_was_enqueued() -> None:
    broker = MemoryBroker()
    app = Application(broker)
    before = time.time()
    handle = app.send("tests.any")
    after = time.time()
    [message] = broker.messages("default", 0, 1)
    job = app.codec.decode_job(message.body, "default", handle.id)
    assert job.enqueued_at is not None and before <= job.enqueued_at <= after
    old = app.codec.encode_job(Job(id="old", task_name="tests.any"))  # an older producer's
    assert b'"at"' not in old
    assert app.codec.decode_job(old, "default", "old").enqueued_at is None
