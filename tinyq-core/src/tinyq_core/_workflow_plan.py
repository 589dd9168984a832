"""A workflow's plan as it travels inside its jobs (``Job.workflow``, ``"wf"`` on the wire),
and the pure steps over it: which jobs start a part of the plan, and what follows a job that
finished. The producer starts a workflow with :func:`start`; a worker continues it with
:func:`followups` and :func:`failure` (see _worker/workflows.py). No I/O here.

Nodes, built once by the producer (_workflows.py), every job id fixed there, so the same step
taken twice (a redelivery, a retried send) names the same jobs and the broker adds them once:

* a signature: ``{"t": task, "a": args, "k": kwargs, "q": queue, "id": job id, "im": 1}``
  (``im``: immutable, the previous value is not prepended);
* a chain: ``{"c": [node, ...]}``;
* a group: ``{"g": [node, ...], "id": group id, "mq": member queues, "cb": node | None,
  "rq": the callback's queue}``, a chord when it has a callback. The final job of member
  ``i`` has the id ``"<group id>.<i>"``: the callback reads the members' results there.

A job's plan: ``{"w": workflow id, "then": [frame, ...], "fin": final, "err": node,
"in": collect}``. Frames, innermost first: ``{"next": node}`` (run it with this job's value)
or ``{"join": group id, "i": index, "of": total, "q": record queue, "cb": node | None,
"mq": member queues}`` (this job ends member ``i``). ``fin`` names the results the workflow's
handle waits for (``{"id", "q"}``, or a group's ``{"g", "n", "q"}``), written with the failure
when a member fails for good. ``in``: read the results of a group's members and pass them,
in order, as the first argument (a chord's callback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._types import Job

Node = dict[str, Any]
COMMON = ("w", "fin", "err")  # what every job of a workflow carries


def queues_spec(queues: Sequence[str]) -> str | list[str]:
    """Member queues, one string when they are all the same (the usual case)."""
    return queues[0] if len(set(queues)) == 1 else list(queues)


def queue_of(spec: str | list[str], index: int) -> str:
    return spec if isinstance(spec, str) else spec[index]


def member_id(group_id: str, index: int) -> str:
    """The id of the final job of member ``index`` of a group."""
    return f"{group_id}.{index}"


def final_ids(final: dict[str, Any]) -> list[tuple[str, str]]:
    """(job id, queue) of each result a workflow's handle waits for."""
    if "g" in final:
        return [(member_id(final["g"], i), queue_of(final["q"], i)) for i in range(final["n"])]
    return [(final["id"], final["q"])]


def collect_spec(group_id: str, total: int, queues: str | list[str]) -> dict[str, Any]:
    return {"g": group_id, "n": total, "q": queues}


def start(node: Node, value: Any, then: list[dict[str, Any]], common: dict[str, Any],
          *, has_value: bool = True, collect: dict[str, Any] | None = None) -> list[Job]:
    """The jobs that start ``node``, given the previous ``value`` (none when not
    ``has_value``; read from a group's results at run time when ``collect``), followed by
    ``then``."""
    if "t" in node:
        args: tuple[Any, ...] = tuple(node.get("a", ()))
        plan = {**common, "then": then}
        if not node.get("im"):
            if collect is not None:
                plan["in"] = collect
            elif has_value:
                args = (value, *args)
        return [Job(id=node["id"], task_name=node["t"], args=args,
                    kwargs=dict(node.get("k", {})), queue=node["q"], workflow=plan)]
    if "c" in node:
        steps = node["c"]
        rest = steps[1:]
        following = ([{"next": rest[0] if len(rest) == 1 else {"c": rest}}] if rest else [])
        return start(steps[0], value, following + then, common, has_value=has_value,
                     collect=collect)
    members = node["g"]
    jobs: list[Job] = []
    for index, member in enumerate(members):
        frame = {"join": node["id"], "i": index, "of": len(members), "q": node.get("rq", ""),
                 "cb": node.get("cb"), "mq": node["mq"]}
        jobs += start(member, value, [frame, *then], common, has_value=has_value,
                      collect=collect)
    return jobs


@attrs.frozen
class Join:
    """A chord member's report: member ``member`` of ``total`` of chord ``chord_id`` (its
    record in ``queue``) is done; the last one enqueues ``callback``."""

    queue: str
    chord_id: str
    member: int
    total: int
    callback: tuple[Job, ...]


def followups(job: Job, value: Any) -> tuple[list[Job], Join | None]:
    """What follows ``job`` (of a workflow) that succeeded with ``value``: jobs to enqueue
    (a chain's next step), or a chord member's report."""
    plan = job.workflow or {}
    then = plan.get("then") or []
    if not then:
        return [], None
    frame, rest = then[0], then[1:]
    common = {k: plan[k] for k in COMMON if k in plan}
    if "next" in frame:
        return start(frame["next"], value, rest, common), None
    if frame.get("cb") is None:  # a group's member, final: the handle reads its result
        return [], None
    callback = start(frame["cb"], None, rest, common,
                     collect=collect_spec(frame["join"], frame["of"], frame["mq"]))
    return [], Join(frame["q"], frame["join"], frame["i"], frame["of"], tuple(callback))


def failure(job: Job, error: str, exc_type: str) -> tuple[list[tuple[str, str]], Job | None]:
    """A workflow's member failed for good: the results to write the failure under (those its
    handle waits for), and its ``on_error`` job (None without one)."""
    plan = job.workflow or {}
    targets = final_ids(plan["fin"]) if "fin" in plan else []
    handler = plan.get("err")
    if handler is None:
        return targets, None
    info = {"workflow": plan.get("w", ""), "job_id": job.id, "task": job.task_name,
            "error": error, "type": exc_type}
    return targets, start(handler, info, [], {"w": plan.get("w", "")})[0]


def error_record(job: Job) -> str:
    """The id of a workflow's on_error record: its first failure enqueues the handler."""
    return f"{(job.workflow or {}).get('w', job.id)}.err"
