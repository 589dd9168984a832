"""Workflows, Celery-like: signatures (``task.s()``, ``task.si()``), ``chain``, ``group`` and
``chord``, each started with ``.delay()``, which returns a :class:`WorkflowHandle`. The whole
plan is fixed here, every job id included (_workflow_plan.py says how it travels); the workers
carry it on (_worker/workflows.py). See docs/workflows.md."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from ._errors import ConfigurationError
from ._handle import JobHandle
from ._workflow_interfaces import ChordRecords
from ._workflow_plan import Node, final_ids, member_id, queues_spec, start

if TYPE_CHECKING:
    from ._producer import Producer
    from ._task import Task


@attrs.frozen
class Signature:
    """A task with arguments, to run later as a step of a workflow. In a chain the previous
    step's value is prepended to ``args``, unless ``immutable`` (``task.si()``)."""

    task: Task[Any, Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    immutable: bool = False

    def delay(self) -> WorkflowHandle:
        return _delay(self, None)


@attrs.frozen
class Chain:
    """Steps run one after another, each given the value of the one before."""

    steps: tuple[Part, ...]
    on_error: Signature | None = None

    def delay(self) -> WorkflowHandle:
        return _delay(self, self.on_error)


@attrs.frozen
class Group:
    """Members run in parallel; the value is the list of their values, in order."""

    members: tuple[Part, ...]
    on_error: Signature | None = None

    def delay(self) -> WorkflowHandle:
        return _delay(self, self.on_error)


@attrs.frozen
class Chord:
    """A group whose callback runs once, with the list of the members' values."""

    group: Group
    callback: Part
    on_error: Signature | None = None

    def delay(self) -> WorkflowHandle:
        return _delay(self, self.on_error)


Part: TypeAlias = "Signature | Chain | Group | Chord"


def chain(*steps: Part, on_error: Signature | None = None) -> Chain:
    """``chain(a.s(1), b.s(), c.s())``: a(1), then b(a's value), then c(b's value)."""
    if not steps:
        raise ValueError("chain() needs at least one step")
    return Chain(tuple(_checked(s) for s in steps), on_error)


def group(members: Iterable[Part], *, on_error: Signature | None = None) -> Group:
    """``group([a.s(1), a.s(2)])``: both at once; the value is ``[a(1), a(2)]``."""
    parts = tuple(_checked(m) for m in members)
    if not parts:
        raise ValueError("group() needs at least one member")
    return Group(parts, on_error)


def chord(header: Group | Iterable[Part], callback: Part, *,
          on_error: Signature | None = None) -> Chord:
    """``chord([a.s(1), a.s(2)], b.s())``: b([a(1), a(2)]) once both finished."""
    members = header if isinstance(header, Group) else group(header)
    return Chord(members, _checked(callback), on_error)


def _checked(part: Any) -> Part:
    if not isinstance(part, Signature | Chain | Group | Chord):
        raise TypeError(f"a workflow step must be a signature (task.s(...)), chain, group or "
                        f"chord, not {type(part).__name__}")
    return part


class WorkflowHandle:
    """What ``.delay()`` of a workflow returns: ``result()`` is its final value (a group's:
    the list of its members' values, in order), or :class:`JobFailed` naming the member that
    failed."""

    def __init__(self, producer: Producer, id: str, final: dict[str, Any]) -> None:
        self.id = id
        self._producer = producer
        self._final = final
        self.handles: list[JobHandle[Any]] = [
            JobHandle(producer, job_id, queue) for job_id, queue in final_ids(final)]

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id}>"

    def result(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for handle in self.handles:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(handle.result(left))
        return values if "g" in self._final else values[0]


def _delay(part: Part, on_error: Signature | None) -> WorkflowHandle:
    from ._task import new_job_id  # _task imports this module

    first = _first_signature(part)
    producer: Producer = first.task._producer
    wid = new_job_id()
    node = _compile(part, wid, "", None)
    final = _final(node)
    common: dict[str, Any] = {"w": wid, "fin": final}
    if on_error is not None:
        common["err"] = _compile(on_error, wid, ".err", None)
    if (on_error is not None or _has_chord(node)) and not isinstance(
            producer.backends.broker, ChordRecords):
        raise ConfigurationError(f"{type(producer.backends.broker).__name__} does not keep "
                                 "chord records (the ChordRecords tier): no chord or on_error "
                                 "on this broker")
    producer.enqueue(start(node, None, [], common, has_value=False))
    return WorkflowHandle(producer, wid, final)


def _first_signature(part: Part) -> Signature:
    while not isinstance(part, Signature):
        part = (part.steps[0] if isinstance(part, Chain) else part.members[0]
                if isinstance(part, Group) else part.group.members[0])
    return part


def _compile(part: Part, wid: str, path: str, final_id: str | None) -> Node:
    """``part`` as a plan node (see _workflow_plan.py). ``final_id``: the id its last job
    must have (it ends a group's member)."""
    if isinstance(part, Signature):
        options = part.task.options
        if final_id is not None and not options.store_result:
            raise ValueError(f"{part.task.name} ends a member of a group or chord but does not "
                             "store its result (store_result=False): the group's value is read "
                             "from the results")
        node: Node = {"t": part.task.name, "a": list(part.args), "k": dict(part.kwargs),
                      "q": options.queue, "id": final_id or f"{wid}{path}"}
        if part.immutable:
            node["im"] = 1
        return node
    if isinstance(part, Chain):
        steps = _normalized(list(part.steps))
        if len(steps) == 1:
            return _compile(steps[0], wid, path, final_id)
        nodes = [_compile(s, wid, f"{path}.{k}", None) for k, s in enumerate(steps[:-1])]
        last = _compile(steps[-1], wid, f"{path}.{len(steps) - 1}", final_id)
        return {"c": [*nodes, last]}
    members = part.members if isinstance(part, Group) else part.group.members
    gid = f"{wid}{path}"
    nodes = [_compile(m, wid, f"{path}.{i}", member_id(gid, i)) for i, m in enumerate(members)]
    queues = queues_spec([_final(n)["q"] for n in nodes])
    if isinstance(part, Group):
        if final_id is not None:
            raise ValueError("a group cannot end a member of another group or chord (nothing "
                             "would gather its values): make it a chord with a callback")
        return {"g": nodes, "id": gid, "mq": queues, "cb": None}
    callback = _compile(part.callback, wid, f"{path}.cb", final_id)
    starts = {job.queue for job in start(callback, None, [], {}, has_value=False)}
    if len(starts) != 1:
        raise ValueError("a chord's callback must start on one queue (its first jobs are "
                         f"enqueued in one step), not on {sorted(starts)}")
    return {"g": nodes, "id": gid, "mq": queues, "cb": callback, "rq": starts.pop()}


def _normalized(steps: list[Part]) -> list[Part]:
    """Nested chains flattened; a group followed by steps becomes a chord whose callback is
    the rest of the chain (and a chord's callback takes the rest on)."""
    flat: list[Part] = []
    for step in steps:
        flat += list(step.steps) if isinstance(step, Chain) else [step]
    for k, step in enumerate(flat[:-1]):
        rest = flat[k + 1:]
        if isinstance(step, Group):
            return [*flat[:k], Chord(step, rest[0] if len(rest) == 1 else Chain(tuple(rest)))]
        if isinstance(step, Chord):
            return [*flat[:k], Chord(step.group, Chain((step.callback, *rest)))]
    return flat


def _final(node: Node) -> dict[str, Any]:
    if "t" in node:
        return {"id": node["id"], "q": node["q"]}
    if "c" in node:
        return _final(node["c"][-1])
    if node.get("cb") is not None:
        return _final(node["cb"])
    return {"g": node["id"], "n": len(node["g"]), "q": node["mq"]}


def _has_chord(node: Node) -> bool:
    if "c" in node:
        return any(_has_chord(n) for n in node["c"])
    if "g" in node:
        return node.get("cb") is not None or any(_has_chord(n) for n in node["g"])
    return False


__all__: Sequence[str] = ["Chain", "Chord", "Group", "Signature", "WorkflowHandle", "chain",
                          "chord", "group"]
