"""Worker records: a :class:`WorkerInfo` as the JSON bytes a broker's worker registry keeps,
and back. The broker stores the bytes without reading them (see ``WorkerRegistry``).

Decoding is tolerant, because workers of several versions may share one broker: unknown
fields are ignored, missing optional ones take their defaults, and a record that cannot be
read at all is skipped (logged at debug level), so one odd worker never hides the others.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from typing import Any

from ._types import CurrentJob, WorkerInfo

logger = logging.getLogger("tinyq.registry")


def new_worker_id() -> str:
    """``host:pid:random``: unique per process, and readable in ``tinyq info``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def encode_worker(info: WorkerInfo) -> bytes:
    record: dict[str, Any] = {
        "id": info.id, "host": info.host, "pid": info.pid, "version": info.version,
        "queues": list(info.queues), "concurrency": info.concurrency,
        "started_at": info.started_at, "heartbeat_at": info.heartbeat_at,
        "processed": info.processed, "failed": info.failed, "state": info.state,
        "cancelled": info.cancelled, "expired": info.expired,
        "async_concurrency": info.async_concurrency, "async_running": info.async_running,
        "jobs": [{"id": j.id, "task": j.task, "queue": j.queue, "started_at": j.started_at}
                 for j in info.jobs],
    }
    return json.dumps(record, separators=(",", ":")).encode()


def _job(raw: dict[str, Any]) -> CurrentJob:
    return CurrentJob(id=str(raw["id"]), task=str(raw["task"]), queue=str(raw["queue"]),
                      started_at=float(raw["started_at"]))


def decode_worker(record: bytes) -> WorkerInfo:
    """The WorkerInfo in ``record``; ValueError (or KeyError, TypeError) when unreadable."""
    raw = json.loads(record)
    state = raw.get("state", "running")
    return WorkerInfo(
        id=str(raw["id"]), host=str(raw["host"]), pid=int(raw["pid"]),
        version=str(raw.get("version", "")), queues=tuple(str(q) for q in raw["queues"]),
        concurrency=int(raw["concurrency"]), started_at=float(raw["started_at"]),
        heartbeat_at=float(raw["heartbeat_at"]), processed=int(raw.get("processed", 0)),
        failed=int(raw.get("failed", 0)),
        state="stopping" if state == "stopping" else "running",
        jobs=tuple(_job(j) for j in raw.get("jobs", ())),
        cancelled=int(raw.get("cancelled", 0)), expired=int(raw.get("expired", 0)),
        async_concurrency=int(raw.get("async_concurrency", 0)),
        async_running=int(raw.get("async_running", 0)),
    )


def decode_workers(records: Iterable[bytes]) -> list[WorkerInfo]:
    """The readable records as WorkerInfo, sorted by host and pid; the others skipped."""
    workers = []
    for record in records:
        try:
            workers.append(decode_worker(record))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.debug("Skipping an unreadable worker record %r: %s", record[:200], exc)
    return sorted(workers, key=lambda w: (w.host, w.pid, w.id))
