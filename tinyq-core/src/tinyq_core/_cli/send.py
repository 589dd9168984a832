"""``tinyq send TASK [ARGS_JSON]``: enqueue a job by task name, optionally wait for it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._app import Application
from .._errors import JobFailed
from .._task import new_job_id
from .._types import Job
from .loading import CommandError
from .output import emit_json, pretty, print_out


def parse_json(text: str, what: str, kind: type, example: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{what} is not valid JSON ({exc}); pass {example}") from None
    if not isinstance(value, kind):
        raise CommandError(f"{what} must be {example}, not {type(value).__name__} {text!r}")
    return value


def send(app: Application, args: argparse.Namespace) -> int:
    values = parse_json(args.args_json, "ARGS_JSON", list, "a JSON array, like '[1, 2]'")
    kwargs = parse_json(args.kwargs, "--kwargs", dict, "a JSON object, like '{\"n\": 2}'")
    task = app.tasks.get(args.task)
    if task is None and app.tasks:
        print(f"tinyq: note: no task {args.task!r} on this application; sending it anyway "
              "(a worker that has it will run it)", file=sys.stderr)
    queue = args.queue or (task.options.queue if task is not None else "default")
    job = Job(id=new_job_id(), task_name=args.task, args=tuple(values), kwargs=kwargs,
              queue=queue)
    # The producer, not app.send: app.send picks the queue itself and takes no --queue.
    handle = app._producer.enqueue([job])[0]
    document: dict[str, Any] = {"id": job.id, "task": job.task_name, "queue": queue}
    if args.wait is None:
        print_out(args.json, document, job.id)
        return 0
    if not args.json:
        print(job.id, flush=True)
    try:
        value = handle.result(timeout=args.wait)
    except TimeoutError:
        raise CommandError(f"job {job.id} did not finish within {args.wait:g}s; it is still "
                           f"queued or running (see tinyq job {job.id})") from None
    except JobFailed as exc:
        document.update(status="failed", error=str(exc), traceback=exc.traceback)
        if args.json:
            emit_json(document)
        else:
            print(exc.traceback.rstrip("\n") or str(exc), file=sys.stderr)
            print(f"tinyq: error: job {job.id} failed: {exc}", file=sys.stderr)
        return 1
    document.update(status="succeeded", result=value)
    print_out(args.json, document, pretty(value))
    return 0
