"""``tinyq info``: per queue, how many jobs wait (ready or scheduled), run and died, and how old
the oldest waiting one is; then the live workers and what they run.

The admin tier counts waiting jobs (due and delayed together) and leased ones, but neither
delayed jobs nor dead letters: it lists them by page. So a queue with at most
``COUNT_LIMIT`` waiting jobs has its ready and scheduled ones counted from one page of
messages, and a bigger one shows them as unknown; dead letters are counted up to
``COUNT_LIMIT`` and shown as "at least" past that. A bounded read per queue, never a scan.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import attrs

from .._app import Application
from .._errors import BadMessage, ConfigurationError
from .._interfaces import BrokerAdmin
from .._types import WorkerInfo
from .loading import describe_broker
from .output import age, emit_json, since, table

COUNT_LIMIT = 200  # messages read per queue to count the scheduled ones and the dead letters


@attrs.frozen
class QueueStats:
    name: str
    waiting: int  # ready + scheduled, exact
    scheduled: int | None  # None: not counted (a big queue, or a broker without messages())
    running: int
    dead: int
    dead_exact: bool  # False: at least ``dead``
    oldest_age: float | None  # seconds since the oldest waiting job was enqueued

    @property
    def ready(self) -> int | None:
        return None if self.scheduled is None else self.waiting - self.scheduled

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.name, "waiting": self.waiting, "ready": self.ready,
                "scheduled": self.scheduled, "running": self.running, "dead": self.dead,
                "dead_exact": self.dead_exact, "oldest_age": self.oldest_age}


def queue_stats(app: Application, admin: BrokerAdmin, queue: str, now: float) -> QueueStats:
    waiting = admin.size(queue)
    running = admin.count_leased(queue)
    dead = len(admin.dead_letters(queue, COUNT_LIMIT + 1))
    scheduled: int | None = 0 if waiting == 0 else None
    first = []
    try:
        if 0 < waiting <= COUNT_LIMIT:  # one page holds them all: count the delayed ones
            page = admin.messages(queue, 0, COUNT_LIMIT)
            scheduled = sum(1 for m in page if m.due is not None and m.due > now)
            first = page[:1]
        elif waiting:
            first = admin.messages(queue, 0, 1)
    except NotImplementedError:
        pass  # a broker whose admin tier predates message lookup: those numbers are unknown
    oldest: float | None = None
    if first:
        try:
            job = app.codec.decode_job(first[0].body, queue, first[0].id)
            oldest = since(job.enqueued_at, now)
        except BadMessage:
            oldest = None  # signed with another key, or not a tinyq job: no time to read
    return QueueStats(queue, waiting, scheduled, running, min(dead, COUNT_LIMIT),
                      dead <= COUNT_LIMIT, oldest)


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
         s.dead if s.dead_exact else f"{s.dead}+", age(s.oldest_age)]
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
         f"{w.processed}/{w.failed}", age(now - w.started_at), f"{age(now - w.heartbeat_at)} ago"]
        for w in workers
    ]
    headers = ["WORKER", "HOST/PID", "STATE", "QUEUES", "THREADS", "DONE/FAILED", "UP",
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
