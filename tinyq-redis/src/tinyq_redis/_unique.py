"""Unique jobs' locks on the Redis broker (:class:`UniqueLocks`). A mixin of
:class:`~tinyq_redis.RedisBroker`: each lock is a string key under its queue's hash tag, so
the check and the enqueue are one script in one Cluster slot (enqueue_unique.lua)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import OutOfMemoryError

from tinyq_core.plugin import BrokerError, EnqueueError, Message, UniqueLocks

from ._connection import Options, out_of_memory, translate_errors
from ._keys import GROUP, Keys, text
from ._scripts import Lua, execute

ENQUEUE_UNIQUE = Lua("enqueue_unique.lua")
RELEASE_UNIQUE = Lua("release_unique.lua")


def lock_key(prefix: str, queue: str, key: str) -> str:
    """Lock ``key`` of ``queue``: beside the queue's keys, in its slot."""
    return f"{{{prefix}:{queue}}}:unique:{key}"


class RedisUniqueLocks(UniqueLocks):
    if TYPE_CHECKING:  # provided by RedisBroker
        client: Any
        where: str
        prefix: str
        options: Options
        _server_checked: bool

        def keys(self, queue: str) -> Keys: ...

        def check_server(self) -> None: ...

        def _pipeline(self) -> Any: ...

        def _record_queues(self, messages: Any) -> None: ...

        def _add_wait(self, pipe: Any, queues: Any) -> int: ...

    def enqueue_unique(
        self, message: Message, key: str, ttl: float, *, durable: bool = False
    ) -> str:
        if not self._server_checked:  # a producer's first use
            self.check_server()
        self._record_queues([message])
        keys = self.keys(message.queue)
        # A relative delay, as enqueue: the server's clock decides when it is due.
        delay_ms = 0 if message.due is None else int((message.due - time.time()) * 1000)
        args = (message.id, delay_ms if delay_ms > 0 else 0, message.body,
                max(1, int(ttl * 1000)), GROUP)
        script_keys = (keys.stream, keys.delayed, keys.payloads, keys.wake, keys.jobs,
                       keys.results, lock_key(self.prefix, message.queue, key))
        if not durable:  # one script call, without the cost of building a pipeline
            with translate_errors(self.where):
                try:
                    return text(ENQUEUE_UNIQUE(self.client, script_keys, args))
                except OutOfMemoryError as exc:  # refused before its first write: not in
                    raise EnqueueError(out_of_memory(self.where)) from exc
        pipe = self._pipeline()
        ENQUEUE_UNIQUE.queue(pipe, script_keys, args)
        waits = self._add_wait(pipe, [message.queue])
        with translate_errors(self.where):
            replies = execute(self.client, pipe, raise_on_error=False)
            if isinstance(replies[0], OutOfMemoryError):
                raise EnqueueError(out_of_memory(self.where)) from replies[0]
            for reply in replies:  # the script's error first, then the WAITs'
                if isinstance(reply, Exception):
                    raise reply
        if min(int(n) for n in replies[-waits:]) < 1:
            raise BrokerError(
                f"durable enqueue: no replica of Redis at {self.where} confirmed unique job "
                f"{message.id} within {self.options.durable_timeout:g} s (durable_timeout). "
                "It is on the primary and runs if it stays up; enqueue it again to be sure "
                "(its lock answers with the job that holds it)"
            )
        return text(replies[0])

    def release_unique(self, queue: str, key: str, owner: str, keep_for: float = 0.0) -> None:
        keep_ms = int(keep_for * 1000) if keep_for > 0 else 0
        with translate_errors(self.where):
            RELEASE_UNIQUE(self.client, (lock_key(self.prefix, queue, key),),
                           (owner, max(keep_ms, 1) if keep_for > 0 else 0))
