"""``tinyq info``: per queue, how many jobs are ready, scheduled, running and dead, and how old
the oldest waiting one is; then the live workers and what they run.

The numbers come from ``BrokerAdmin.counts()``: a few cheap reads per queue, never a scan. A
broker whose admin tier predates ``counts()`` shows its waiting and running jobs (``size``,
``count_leased``) and the rest as unknown.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import attrs

from .._app import Application
from .._errors import BadMessage, ConfigurationError
from .._interfaces import BrokerAdmin
from .._types import QueueCounts, WorkerInfo
from .loading import describe_broker
from .output import age, emit_json, since, table


@attrs.frozen
class QueueStats:
    name: str
    waiting: int  # ready + scheduled
    ready: int | None  # None: unknown (a broker without counts())
    scheduled: int | None
    running: int
    dead: int | None
    oldest_age: float | None  # seconds since the oldest waiting job was enqueued

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.name, "waiting": self.waiting, "ready": self.ready,
                "scheduled": self.scheduled, "running": self.running, "dead": self.dead,
                "dead_exact": self.dead is not None, "oldest_age": self.oldest_age}


def counts_of(admin: BrokerAdmin, queue: str) -> QueueCounts | None:
    """The queue's counts, or None from a broker that cannot count them."""
    try:
        return admin.counts(queue)
    except NotImplementedError:
        return None


def oldest_age(app: Application, admin: BrokerAdmin, queue: str, now: float) -> float | None:
    """Seconds since the first waiting job was enqueued; None when unknown."""
    try:
        first = admin.messages(queue, 0, 1)
    except NotImplementedError:
        return None  # a broker whose admin tier predates message lookup
    if not first:
        return None
    try:
        return since(app.codec.decode_job(first[0].body, queue, first[0].id).enqueued_at, now)
    except BadMessage:
        return None  # signed with another key, or not a tinyq job: no time to read


def queue_stats(app: Application, admin: BrokerAdmin, queue: str, now: float) -> QueueStats:
    counts = counts_of(admin, queue)
    if counts is None:
        waiting = admin.size(queue)
        stats = QueueStats(queue, waiting, None, None, admin.count_leased(queue), None, None)
    else:
        waiting = counts.ready + counts.scheduled
        stats = QueueStats(queue, waiting, counts.ready, counts.scheduled, counts.leased,
                           counts.dead, None)
    if waiting == 0:
        return stats
    return attrs.evolve(stats, oldest_age=oldest_age(app, admin, queue, now))


def gather(
    app: Application, admin: BrokerAdmin
) -> tuple[list[QueueStats], list[WorkerInfo] | None]:
    """The queues' numbers, and the live workers (None: the broker keeps no registry)."""
    now = time.time()
    stats = [queue_stats(app, admin, queue, now) for queue in app.queues()]
    try:
        workers: list[WorkerInfo] | None = app.workers()
    except ConfigurationError:
        workers = None
    return stats, workers


def as_json(
    app: Application, stats: list[QueueStats], workers: list[WorkerInfo] | None
) -> Any:
    now = time.time()
    return {
        "broker": describe_broker(app),
        "time": now,
        "queues": [s.as_json() for s in stats],
        "workers": None if workers is None else [worker_json(w, now) for w in workers],
    }


def worker_json(worker: WorkerInfo, now: float) -> dict[str, Any]:
    document = attrs.asdict(worker)
    document["queues"] = list(worker.queues)
    document["heartbeat_age"] = now - worker.heartbeat_at
    document["jobs"] = [{**attrs.asdict(j), "runtime": now - j.started_at} for j in worker.jobs]
    return document


def render(
    app: Application, stats: list[QueueStats], workers: list[WorkerInfo] | None
) -> str:
    now = time.time()
    queue_rows = [
        [s.name, s.waiting, s.ready, s.scheduled, s.running,
         s.dead, age(s.oldest_age)]
        for s in stats
    ]
    lines = [f"Broker: {describe_broker(app)}", ""]
    lines.append(table(["QUEUE", "WAITING", "READY", "SCHEDULED", "RUNNING", "DEAD", "OLDEST"],
                       queue_rows)
                 if queue_rows else "No queues.")
    lines.append("")
    if not workers:
        lines.append("No workers." if workers is not None else
                     "Workers: this broker keeps no worker registry.")
        return "\n".join(lines)
    worker_rows = [
        [w.id, f"{w.host}/{w.pid}", w.state, ",".join(w.queues), w.concurrency,
         f"{w.async_running}/{w.async_concurrency}" if w.async_concurrency else "-",
         f"{w.processed}/{w.failed}", age(now - w.started_at), f"{age(now - w.heartbeat_at)} ago"]
        for w in workers
    ]
    # ASYNC: the event loop's jobs running / its slots ("-": none, async jobs take threads).
    headers = ["WORKER", "HOST/PID", "STATE", "QUEUES", "THREADS", "ASYNC", "DONE/FAILED", "UP",
               "HEARTBEAT"]
    header, *rows = table(headers, worker_rows).splitlines()
    lines.append(header)
    for line, worker in zip(rows, workers, strict=True):
        lines.append(line)
        lines.extend(f"    job {j.id} {j.task} on {j.queue}, running {age(now - j.started_at)}"
                     for j in worker.jobs)
    return "\n".join(lines)


def run_info(app: Application, admin: BrokerAdmin, json_output: bool,
             watch: float | None) -> int:
    """Print once, or with ``watch`` redraw every ``watch`` seconds until Ctrl+C (exit 0).
    ``--json --watch`` prints one compact JSON document per line, per refresh."""
    try:
        while True:
            stats, workers = gather(app, admin)
            if json_output:
                emit_json(as_json(app, stats, workers), compact=watch is not None)
            else:
                if watch is not None and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")  # home and clear: a redraw, not a scroll
                text = render(app, stats, workers)
                if watch is not None:
                    text += f"\n\nEvery {watch:g}s, {time.strftime('%H:%M:%S')}; Ctrl+C to stop."
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
            if watch is None:
                return 0
            time.sleep(watch)
    except KeyboardInterrupt:
        return 0
