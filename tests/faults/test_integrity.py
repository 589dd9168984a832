"""Integrity with a ``secret_key`` against someone who can write to Redis: messages and results
copied, forged or replayed straight into a real redis-server (XADD, RPUSH, bypassing the
producer) and consumed by a real worker. One test per part of the threat model in
docs/guarantees.md#security-model.

Queue ``q`` with prefix ``p`` keeps its stream in ``{p:q}:stream`` (entries: ``id``, ``b``, ``a``),
its jobs hash in ``{p:q}:jobs`` and the result of job ``j`` in ``{p:q}:result:j``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import redis

from tinyq_core import Application, JobFailed
from tinyq_core import Job as JobEnvelope

from redis_server import RedisServer
from support.worker_thread import running_worker

KEY = "integrity-key"
TASK = "integrity.double"


class Signed:
    """A signed application on its own key prefix of the shared test Redis; ``runs`` lists
    the arguments its task ran with, in this process."""

    def __init__(self, server: RedisServer) -> None:
        self.ns = "int" + uuid.uuid4().hex[:8]
        self.app = Application(f"{server.url}?visibility_timeout=1&prefix={self.ns}",
                               secret_key=KEY, queues=["default", "other"])
        self.redis = redis.Redis.from_url(server.url)
        self.runs: list[int] = []

        @self.app.task(name=TASK)
        def double(x: int) -> int:
            self.runs.append(x)
            return x * 2

        self.task = double

    def key(self, what: str, queue: str = "default") -> str:
        return f"{{{self.ns}:{queue}}}:{what}"

    def body(self, job_id: str, x: int, queue: str = "default") -> bytes:
        """A genuine signed message, as the application's producer writes it."""
        return self.app.codec.encode_job(JobEnvelope(id=job_id, task_name=TASK, args=(x,),
                                                     queue=queue))

    def xadd(self, job_id: str, body: bytes, queue: str = "default", a: int = 0) -> None:
        fields: dict[str, bytes | str | int] = {"id": job_id, "b": body}
        if a:
            fields["a"] = a
        self.redis.xadd(self.key("stream", queue), fields)  # type: ignore[arg-type]

    def drain(self) -> None:
        with running_worker(self.app, burst=True, join_timeout=20,
                            queues=["default", "other"]):
            pass

    def dead(self, queue: str = "default") -> dict[str, str]:
        return {d.message.id: d.reason
                for d in self.app.broker.dead_letters(queue, limit=1000)}

    def close(self) -> None:
        self.app.close()
        self.redis.close()


@pytest.fixture
def signed(redis_server: RedisServer) -> Iterator[Signed]:
    s = Signed(redis_server)
    yield s
    s.close()


def test_a_signed_message_copied_to_another_id_or_queue_is_refused(signed: Signed) -> None:
    genuine = signed.body("orig", 1)
    signed.xadd("copy", genuine)  # same queue, another job id
    signed.xadd("orig", genuine, queue="other")  # same job id, another queue
    signed.drain()
    assert signed.runs == []
    assert "bad signature" in signed.dead()["copy"]
    assert "bad signature" in signed.dead("other")["orig"]


def test_a_signed_result_copied_to_another_job_is_refused(signed: Signed) -> None:
    a = signed.task.apply_async((21,), job_id="job-a")
    signed.drain()
    assert a.result(timeout=5) == 42
    # Job B never ran; its result key gets A's signed result.
    signed.redis.rpush(signed.key("result:job-b"), signed.redis.lindex(
        signed.key("result:job-a"), 0))  # type: ignore[arg-type]
    b = signed.app.job("job-b", queue="default")
    assert b.status() != "succeeded"
    with pytest.raises(JobFailed, match="signed for another job"):
        b.result(timeout=1)


def test_a_forged_message_touches_nothing_under_the_id_it_claims(signed: Signed) -> None:
    done = signed.task.apply_async((5,), job_id="done")
    signed.drain()
    assert done.result(timeout=5) == 10
    waiting = signed.task.apply_async((6,), job_id="waiting", countdown=300)
    unsigned = Application("memory://").codec.encode_job(
        JobEnvelope(id="done", task_name=TASK, args=(7,)))
    signed.xadd("done", unsigned)
    signed.xadd("waiting", b"tqs1:" + b"0" * 64 + b":" + json.dumps(
        {"id": "waiting", "task": TASK, "args": [8]}).encode())
    signed.drain()
    assert signed.runs == [5]
    assert done.result(timeout=1) == 10  # not overwritten with a failure
    assert waiting.status() == "scheduled"  # its mark in the jobs hash is still there
    assert signed.redis.hget(signed.key("jobs"), "waiting") == b"d"
    dead = signed.dead()
    assert "not signed" in dead["done"]
    assert "bad signature" in dead["waiting"]
    assert signed.redis.xlen(signed.key("stream")) == 0
    # Requeued by an operator, they still touch nothing under those ids.
    assert signed.app.broker.requeue_dead_letters("default") == 2
    assert done.result(timeout=1) == 10
    assert waiting.status() == "scheduled"
    signed.drain()
    assert set(signed.dead()) == {"done", "waiting"} and signed.runs == [5]


def test_an_injected_delivery_count_cannot_force_a_crash_loop(signed: Signed) -> None:
    signed.xadd("counted", signed.body("counted", 4), a=1000)
    signed.drain()
    assert signed.dead() == {}
    assert signed.runs == [4]
    assert signed.app.job("counted", queue="default").result(timeout=1) == 8


def test_a_replayed_message_is_not_run_again(
    signed: Signed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinyq")
    first = signed.task.apply_async((3,), job_id="once")
    signed.drain()
    assert first.result(timeout=5) == 6
    # The producer enqueues the id again: nothing is added, the handle is the existing job's.
    again = signed.task.apply_async((3,), job_id="once")
    assert again == first
    assert signed.redis.xlen(signed.key("stream")) == 0
    # Someone replays the genuine message straight into the stream.
    signed.xadd("once", signed.body("once", 3))
    signed.drain()
    assert signed.runs == [3]
    assert signed.dead() == {}
    assert again.result(timeout=1) == 6
    assert signed.redis.xlen(signed.key("stream")) == 0
    assert any("replay" in r.getMessage() and "once" in r.getMessage()
               for r in caplog.records)
