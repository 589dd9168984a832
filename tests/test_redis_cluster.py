"""tinyq on a Redis Cluster of three primaries, started for this module, with an ACL user
(the default user is off, so every test also proves that credentials work on a Cluster)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyq_core import Application, BrokerError, BrokerUnavailable, ConfigurationError, Message
from tinyq_core.testing import BrokerContract
from tinyq_redis import RedisBroker

from readme_hello import run_readme_hello_world
from redis_server import RedisClusterServers, free_port
from support.waiting import wait_until
from support.worker_thread import running_worker


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(user="alice", password="cl-s3cret").start()
    yield servers
    servers.close()


class TestRedisBrokerOnCluster(BrokerContract):
    # Three primaries, no replicas; a durable enqueue waits durable_timeout (0.2 s).
    durable_enqueue_refused = True

    @pytest.fixture
    def broker(self, cluster: RedisClusterServers) -> Iterator[RedisBroker]:
        broker = RedisBroker(f"{cluster.url}?visibility_timeout=0.5&durable_timeout=0.2",
                             prefix=f"t{uuid.uuid4().hex[:8]}")
        yield broker
        broker.close()

    @pytest.fixture
    def second_broker(
        self, broker: RedisBroker, cluster: RedisClusterServers
    ) -> Iterator[RedisBroker]:
        """What another process would open: its own connections, the same prefix."""
        second = RedisBroker(f"{cluster.url}?visibility_timeout=0.5", prefix=broker.prefix)
        yield second
        second.close()


def queues_on_each_node(cluster: RedisClusterServers, prefix: str) -> list[str]:
    """One queue name per node, in node order: the three queues live on three nodes."""
    found: dict[int, str] = {}
    for i in range(200):
        node = cluster.node_of(f"{{{prefix}:q{i}}}:stream")
        found.setdefault(node.port, f"q{i}")
        if len(found) == len(cluster.nodes):
            return [found[n.port] for n in cluster.nodes]
    raise AssertionError("no queue names found for every node")


def test_three_queues_on_three_nodes_drain_in_priority_order(
    cluster: RedisClusterServers,
) -> None:
    prefix = f"p{uuid.uuid4().hex[:6]}"
    high, mid, low = queues_on_each_node(cluster, prefix)
    app = Application(f"{cluster.url}?prefix={prefix}")
    order: list[str] = []

    @app.task()
    def record(queue: str) -> None:
        order.append(queue)

    for queue in (low, mid, high):  # the lowest first: priority, not arrival, decides
        for _ in range(30):
            record.apply_async((queue,), queue=queue)
    # One thread: the jobs run in the order the worker takes them.
    app.worker(queues=[high, mid, low], concurrency=1).run(burst=True)
    assert order == [high] * 30 + [mid] * 30 + [low] * 30
    assert [app.broker.size(q) for q in (high, mid, low)] == [0, 0, 0]
    app.close()


def test_an_idle_reserve_wakes_for_any_queue_and_loses_no_entry(
    cluster: RedisClusterServers,
) -> None:
    """Blocked on three queues on three nodes: a job on the lowest one ends the wait at once
    (not at the timeout); jobs arriving on several at the same moment are all handed out or
    left unread, never leased and dropped."""
    prefix = f"w{uuid.uuid4().hex[:6]}"
    queues = queues_on_each_node(cluster, prefix)
    broker = RedisBroker(cluster.url, prefix=prefix)
    broker.reserve(queues, 1, 0)  # creates the consumer groups

    def later(messages: list[Message]) -> None:
        time.sleep(0.3)
        broker.enqueue(messages)

    threading.Thread(target=later, args=([Message("late", queues[2], b"x")],)).start()
    started = time.monotonic()
    got = broker.reserve(queues, 10, 4.0)
    assert [d.id for d in got] == ["late"]
    assert time.monotonic() - started < 2.0  # woken by the job, not by the 4 s timeout
    broker.ack(got)

    for round_ in range(10):
        messages = [Message(f"r{round_}-{q}", q, b"x") for q in queues]
        threading.Thread(target=later, args=(messages,)).start()
        handed = broker.reserve(queues, 10, 4.0)
        handed += broker.reserve(queues, 10, 0)
        assert sorted(d.id for d in handed) == sorted(m.id for m in messages)
        broker.ack(handed)
    pending = [broker.client.xpending(broker.keys(q).stream, "tinyq")["pending"] for q in queues]
    assert pending == [0, 0, 0]
    broker.close()


def test_delayed_jobs_on_three_nodes(cluster: RedisClusterServers) -> None:
    """The mover watches three queues' wake keys on three nodes at once."""
    prefix = f"d{uuid.uuid4().hex[:6]}"
    queues = queues_on_each_node(cluster, prefix)
    app = Application(f"{cluster.url}?prefix={prefix}")

    @app.task()
    def stamp() -> float:
        return time.time()

    handles, due = [], []
    for i, q in enumerate(queues):  # each due counted from before its own enqueue (a slow
        due.append(time.time() + 0.5 + i * 0.3)  # first call to a node must not move it)
        handles.append(stamp.apply_async(countdown=0.5 + i * 0.3, queue=q))
    with running_worker(app, queues=queues, concurrency=2):
        ran = [h.result(timeout=10) for h in handles]
    for when, expected in zip(ran, due, strict=True):
        assert expected - 0.05 <= when < expected + 1.0
    app.close()


def test_a_slot_migrating_under_a_running_worker(cluster: RedisClusterServers) -> None:
    """The queue's slot moves to another node mid-drain (ASK, then MOVED): every job runs
    once, every result is stored, nothing stays pending and nothing is dead-lettered."""
    prefix = f"m{uuid.uuid4().hex[:6]}"
    app = Application(f"{cluster.url}?prefix={prefix}&visibility_timeout=5")
    runs: dict[int, int] = {}

    @app.task()
    def slow(i: int) -> int:
        time.sleep(0.002)
        runs[i] = runs.get(i, 0) + 1
        return i

    handles = slow.map(range(1500))
    stream = f"{{{prefix}:default}}:stream"
    source = cluster.node_of(stream)
    target = next(n for n in cluster.nodes if n is not source)
    with running_worker(app, burst=True, join_timeout=120, queues=["default"], concurrency=4):
        wait_until(lambda: len(runs) >= 100, 30, message="the drain to be under way")
        assert len(runs) < 1500  # the move happens mid-drain
        cluster.move_slot_of(stream, target)
    assert cluster.node_of(stream) is target
    assert sorted(runs) == list(range(1500))
    assert set(runs.values()) == {1}  # no acknowledgement lost: nothing ran twice
    assert [h.result(timeout=5) for h in handles] == list(range(1500))
    assert app.broker.size("default") == 0
    assert app.broker.dead_letters("default") == []
    app.close()


def test_a_node_restart_under_a_running_worker(cluster: RedisClusterServers) -> None:
    """One node (appendonly) restarts while a worker drains queues on every node; the worker
    rides it out and every job runs."""
    prefix = f"n{uuid.uuid4().hex[:6]}"
    queues = queues_on_each_node(cluster, prefix)
    app = Application(f"{cluster.url}?prefix={prefix}&visibility_timeout=2")
    runs: dict[int, int] = {}

    @app.task()
    def slow(i: int) -> int:
        time.sleep(0.005)
        runs[i] = runs.get(i, 0) + 1
        return i

    handles = [slow.apply_async((i,), queue=queues[i % 3]) for i in range(600)]
    with running_worker(app, join_timeout=30, queues=queues, concurrency=4):
        wait_until(lambda: len(runs) >= 50, 30, message="the drain to be under way")
        assert len(runs) < 600  # the restart happens mid-drain
        cluster.nodes[1].restart()
        cluster.wait_ok()
        assert [h.result(timeout=60) for h in handles] == list(range(600))
    assert sorted(runs) == list(range(600))
    assert sum(app.broker.size(q) for q in queues) == 0
    app.close()


def test_hello_world_through_the_cli_on_a_cluster(
    tmp_path: Path, cluster: RedisClusterServers
) -> None:
    """The README's app.py, unchanged, run with ``tinyq -u redis+cluster://...``."""
    out = run_readme_hello_world(tmp_path, f"{cluster.url}?prefix=hello{uuid.uuid4().hex[:6]}")
    assert "cl-s3cret" not in out


def test_durable_enqueue_without_replicas_is_a_clear_error(
    cluster: RedisClusterServers,
) -> None:
    app = Application(f"{cluster.url}?durable_timeout=0.1", durable_enqueue=True)

    @app.task()
    def add(m: int, n: int) -> int:
        return m + n

    with pytest.raises(BrokerError, match=r"no replica .* confirmed the 1 job\(s\) within 0.1 s"):
        add.delay(1, 2)
    handle = add.apply_async((1, 2), durable=False)
    assert handle.status() == "queued"
    app.close()


def test_cluster_uri_errors(cluster: RedisClusterServers) -> None:
    with pytest.raises(ConfigurationError, match="a cluster has no databases"):
        RedisBroker(f"{cluster.url}/1")
    with pytest.raises(ConfigurationError, match="not a host:port"):
        RedisBroker("redis+cluster://127.0.0.1:7000,:7001")
    with pytest.raises(ConfigurationError, match="unknown option"):
        RedisBroker(f"{cluster.url}?visibility=3")
    dead = free_port()  # nobody listens there
    with pytest.raises(BrokerUnavailable, match="Redis Cluster at redis\\+cluster://u:\\*\\*\\*@"):
        RedisBroker(f"redis+cluster://u:pw@127.0.0.1:{dead}")


def test_a_cluster_over_tls_with_an_acl_user() -> None:
    """rediss+cluster:// to nodes that speak TLS only (to clients and to each other)."""
    servers = RedisClusterServers(user="bob", password="tls-s3cret", tls=True).start()
    try:
        assert servers.url.startswith("rediss+cluster://bob:tls-s3cret@")
        app = Application(f"{servers.url}&prefix=tls")

        @app.task()
        def add(m: int, n: int) -> int:
            return m + n

        handles = add.map([(i, i) for i in range(20)])
        app.worker(concurrency=2).run(burst=True)
        assert [h.result(timeout=5) for h in handles] == [2 * i for i in range(20)]
        app.close()
        plain = servers.url.replace("rediss+", "redis+").split("/?")[0]
        with pytest.raises(BrokerUnavailable):  # the nodes take no plain-text clients
            RedisBroker(plain).ping()
    finally:
        servers.close()
