"""Periodic schedules' records on Redis (:class:`ScheduleRecords`): the hash
``{prefix:queue}:ticks`` (schedule name -> last tick in ms), in the queue's slot, so the
record and the job of a tick change in one script (claim_tick.lua) on a Cluster too. A mixin
of :class:`~tinyq_redis.RedisBroker`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import OutOfMemoryError

from tinyq_core.plugin import BrokerError, EnqueueError, Message, ScheduleRecords

from ._connection import out_of_memory, translate_errors
from ._scripts import Lua, execute

if TYPE_CHECKING:
    from ._keys import Keys

CLAIM_TICK = Lua("claim_tick.lua")


class RedisSchedules(ScheduleRecords):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        _server_checked: bool

        def keys(self, queue: str) -> Keys: ...

        def check_server(self) -> None: ...

        def _pipeline(self) -> Any: ...

        def _record_queues(self, messages: Sequence[Message]) -> None: ...

        def _add_wait(self, pipe: Any, queues: Iterable[str]) -> int: ...

    def ticks_key(self, queue: str) -> str:
        return self.keys(queue).stream.removesuffix(":stream") + ":ticks"

    def claim_tick(
        self,
        queue: str,
        schedule: str,
        tick: float,
        message: Message | None = None,
        *,
        durable: bool = False,
    ) -> bool:
        if not self._server_checked:
            self.check_server()
        keys = self.keys(queue)
        args: list[Any] = [schedule, round(tick * 1000)]
        if message is not None:
            if message.due is not None and message.due > time.time():
                raise ValueError("claim_tick() enqueues a message due now, not a delayed one")
            self._record_queues([message])
            args += [message.id, message.body]
        pipe = self._pipeline()
        CLAIM_TICK.queue(pipe, [*keys.enqueue, self.ticks_key(queue)], args)
        waits = self._add_wait(pipe, [queue]) if durable else 0
        with translate_errors(self.where):
            try:
                replies = execute(self.client, pipe)
            except OutOfMemoryError as exc:  # refused before its first write
                raise EnqueueError(out_of_memory(self.where)) from exc
        won = int(replies[0]) >= 0
        if won and waits and min(int(n) for n in replies[-waits:]) < 1:
            raise BrokerError(
                f"durable claim of schedule {schedule!r}: no replica of Redis at {self.where} "
                "confirmed the tick within durable_timeout; it is recorded (and its job "
                "enqueued) on the primary")
        return won

    def last_ticks(self, queue: str, schedules: Sequence[str]) -> dict[str, float]:
        names = list(dict.fromkeys(schedules))
        if not names:
            return {}
        with translate_errors(self.where):
            values = self.client.hmget(self.ticks_key(queue), names)
        return {name: int(value) / 1000 for name, value in zip(names, values, strict=True)
                if value is not None}
