"""tinyq on Sentinel: a primary, its replica and three sentinels, started by the test; the
primary is killed with SIGKILL under a running worker and a producer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tinyq_core import Application, BrokerError, BrokerUnavailable, ConfigurationError
from tinyq_redis import RedisBroker

from redis_server import SentinelDeployment
from support.project import AppProject

APP = '''
import os, time
from tinyq_core import Application

app = Application(os.environ["TINYQ_URL"])


@app.task(name="record")
def record(i):
    with open(os.environ["RUNS_FILE"], "a") as runs:
        runs.write(f"{i} {time.time()}\\n")
    time.sleep(0.002)
    return i
'''


def test_a_failover_under_a_worker_and_a_durable_producer(tmp_path: Path) -> None:
    """The primary dies (SIGKILL) while a worker drains and a producer enqueues with
    ``durable_enqueue``. The worker carries on against the promoted replica without a
    restart, and every job whose enqueue returned runs at least once."""
    deployment = SentinelDeployment().start()
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    project = AppProject(tmp_path, APP, url=deployment.url, visibility_timeout=2,
                         env={"RUNS_FILE": str(runs_file)})
    try:
        url = project.url
        assert url is not None
        worker = project.worker("-w", "4")

        wrong = RedisBroker(deployment.url.replace("/tinyq", "/nope"))
        with pytest.raises(BrokerUnavailable, match="No master found for 'nope'"):
            wrong.ping()
        producer = Application(url, durable_enqueue=True)

        @producer.task(name="record")
        def record(i: int) -> int:
            return i

        total, acknowledged, refused = 600, set(), 0
        killed = threading.Event()
        failed_over = threading.Event()  # set at the end: an error in the thread leaves it unset

        killed_at: list[float] = []

        def fail_over() -> None:
            old = deployment.primary
            old.stop(kill=True)
            killed_at.append(time.time())
            killed.set()
            deployment.wait_until(lambda: deployment.sentinels_agree(on=deployment.replica))
            # The old primary comes back empty and Sentinel makes it the new one's replica:
            # from then on durable enqueues are confirmed again.
            old.start()
            deployment.wait_until(lambda: deployment.replica_in_sync(old))
            failed_over.set()

        deadline = time.monotonic() + 90
        for i in range(total):
            if i == total // 3:
                threading.Thread(target=fail_over).start()
            while True:
                assert time.monotonic() < deadline, f"enqueue of job {i} never confirmed"
                try:
                    record.apply_async((i,), job_id=f"job-{i}")
                except BrokerError:  # the primary is gone, or no replica has the job yet
                    refused += 1
                    time.sleep(0.05)
                else:
                    acknowledged.add(i)
                    break
            time.sleep(0.003)
        assert killed.is_set() and refused > 0  # the kill did happen under the producer
        assert failed_over.wait(60), "the old primary never came back as the new one's replica"

        def ran() -> list[int]:
            return [int(line.split()[0]) for line in runs_file.read_text().splitlines()]

        while not acknowledged <= set(ran()):
            assert time.monotonic() < deadline, (
                f"{len(acknowledged - set(ran()))} acknowledged jobs never ran; worker log:\n"
                + project.output(worker)[-3000:]
            )
            time.sleep(0.1)
        assert worker.poll() is None  # the same worker process, never restarted
        times = [float(line.split()[1]) for line in runs_file.read_text().splitlines()]
        resumed = min(t for t in times if t > killed_at[0]) - killed_at[0]
        runs = ran()
        print(f"failover: first job after the kill ran {resumed:.1f} s later; "
              f"{refused} enqueue attempts refused; {len(runs) - len(set(runs))} jobs ran twice")
        output = project.stop(worker, timeout=30)
        assert worker.returncode == 0, output[-3000:]
        assert "Broker is reachable again, resuming" in output
        assert "Traceback" not in output
        producer.close()
    finally:
        project.close()
        deployment.close()


def test_sentinel_uri_errors() -> None:
    with pytest.raises(ConfigurationError, match="name the Sentinel service"):
        RedisBroker("redis+sentinel://127.0.0.1:26379")
    with pytest.raises(ConfigurationError, match="not a number"):
        RedisBroker("redis+sentinel://127.0.0.1:26379/tinyq/zero")
    broker = RedisBroker("redis+sentinel://u:pw@127.0.0.1:1,127.0.0.1:2/tinyq")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="are the sentinels up") as info:
        broker.ping()
    assert time.monotonic() - started < 5  # a bounded retry, not redis-py's long default
    assert "redis+sentinel://u:***@127.0.0.1:1,127.0.0.1:2/tinyq" in str(info.value)
    assert "pw" not in str(info.value).replace("***", "")


def test_sentinel_over_tls_with_an_acl_user() -> None:
    """rediss+sentinel:// with credentials: TLS to the sentinels and to the primary they
    name, logged in as an ACL user (the replica and the sentinels log in as it too)."""
    deployment = SentinelDeployment(user="alice", password="sn-s3cret", tls=True).start()
    try:
        assert deployment.url.startswith("rediss+sentinel://alice:sn-s3cret@")
        app = Application(f"{deployment.url}&prefix=tls")

        @app.task()
        def add(m: int, n: int) -> int:
            return m + n

        handles = add.map([(i, i) for i in range(20)], durable=True)
        app.worker(concurrency=2).run(burst=True)
        assert [h.result(timeout=5) for h in handles] == [2 * i for i in range(20)]
        app.close()
        wrong = deployment.url.replace("sn-s3cret", "wrong-pw")
        with pytest.raises(BrokerError) as info:
            RedisBroker(wrong).ping()
        assert "wrong-pw" not in str(info.value)
    finally:
        deployment.close()
