"""The Redis broker's async tier: one ``redis.asyncio`` connection pool per event loop, built
from the broker's URI, running the same Lua scripts (the same objects, by SHA) on the same
keys as the blocking broker. A result wait blocks on the server (BRPOPLPUSH, in slices), as
in _results.py. Cluster and Sentinel URIs, and a broker given a client instance, are driven
through threads instead (:class:`ThreadedAsyncClient`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, OutOfMemoryError, RedisError, ResponseError

from tinyq_core.plugin import (
    AsyncBroker,
    AsyncBrokerClient,
    BrokerError,
    CancelState,
    EnqueueError,
    JobStatus,
    Message,
    Result,
    ThreadedAsyncClient,
)

from ._admin import ADMIN_CHUNK
from ._cancel import cancel_call, cancel_state
from ._connection import connect, out_of_memory, translate_errors
from ._keys import GROUP, queues_key, text
from ._results import OOM_POLL, _bytes
from ._scripts import CANCEL, ENQUEUE, STATUS, Lua

if TYPE_CHECKING:
    from ._broker import RedisBroker


async def arun(lua: Lua, client: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """``lua(client, keys, args)`` on an asyncio client: EVALSHA, loading it on NOSCRIPT."""
    try:
        return await client.execute_command("EVALSHA", lua.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(lua.text)
        return await client.execute_command("EVALSHA", lua.sha, len(keys), *keys, *args)


async def aexecute(client: Any, pipe: Any) -> list[Any]:
    """``_scripts.execute(..., raise_on_error=False)`` on an asyncio pipeline."""
    commands = [args for args, _ in pipe.command_stack]
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):
            args = commands[index]
            await client.script_load(Lua.by_sha[str(args[1])].text)
            try:
                replies[index] = await client.execute_command(*args)
            except RedisError as exc:  # among the replies, as in the pipeline
                replies[index] = exc
    return replies


class RedisAsyncClient(AsyncBrokerClient):
    """One event loop's pool on a single Redis server."""

    def __init__(self, broker: RedisBroker, client: Any) -> None:
        self.broker = broker
        self.client = client
        self.where = broker.where

    async def aenqueue(self, messages: Sequence[Message], *, durable: bool = False) -> None:
        if not messages:
            return
        broker = self.broker
        if not broker._server_checked:  # once per broker: a few reads, on a thread
            await asyncio.to_thread(broker.check_server)
        await self._record_queues(messages)
        if len(messages) == 1 and not durable and messages[0].due is None:
            m = messages[0]
            with translate_errors(self.where):
                try:
                    await arun(ENQUEUE, self.client, broker.keys(m.queue).enqueue,
                               (m.id, m.body))
                except OutOfMemoryError as exc:  # refused before its first write: not in
                    raise EnqueueError(out_of_memory(self.where)) from exc
            return
        pipe = self.client.pipeline(transaction=False)
        chunks = broker.queue_enqueue(pipe, messages)
        if durable:
            pipe.execute_command("WAIT", 1, max(1, int(broker.options.durable_timeout * 1000)))
        with translate_errors(self.where):
            replies = await aexecute(self.client, pipe)
        broker._check_chunks(chunks, replies[:len(chunks)])
        if durable and int(replies[-1]) < 1:
            raise BrokerError(
                f"durable enqueue: no replica of Redis at {self.where} confirmed the "
                f"{len(messages)} job(s) within {broker.options.durable_timeout:g} s "
                "(durable_timeout). They are on the primary and run if it stays up; enqueue "
                "them again under the same job_id to be sure (a queued job is not added twice)"
            )

    async def _record_queues(self, messages: Sequence[Message]) -> None:
        """As the blocking broker's: once per queue and process, before the jobs."""
        broker = self.broker
        new = {m.queue for m in messages} - broker._known_queues
        if not new:
            return
        for queue in new:
            broker.keys(queue)  # refuses a name that cannot be a key
        with translate_errors(self.where):
            try:
                await self.client.sadd(queues_key(broker.prefix), *sorted(new))
            except OutOfMemoryError as exc:
                raise EnqueueError(out_of_memory(self.where)) from exc
        broker._known_queues |= new

    async def aget(
        self, job_id: str, timeout: float | None = 0, queue: str = "default"
    ) -> Result | None:
        key = self.broker.keys(queue).result(job_id)
        with translate_errors(self.where):
            if timeout is not None and timeout <= 0:
                body = await self.client.lindex(key, 0)
                return None if body is None else Result(job_id, _bytes(body), queue)
            deadline = None if timeout is None else time.monotonic() + timeout
            polling = False  # Redis is at maxmemory: it refuses blocking pops
            while True:
                wait = self.broker._longest_block
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                if polling:
                    body = await self.client.lindex(key, 0)
                    if body is None:
                        await asyncio.sleep(min(OOM_POLL, wait))
                else:
                    try:
                        body = await self.client.brpoplpush(key, key, timeout=max(0.001, wait))
                    except OutOfMemoryError:
                        polling = True
                        continue
                if body is not None:
                    return Result(job_id, _bytes(body), queue)

    async def astatus(self, job_id: str, queue: str = "default") -> JobStatus:
        keys = self.broker.keys(queue)
        cursor = "-"
        with translate_errors(self.where):
            try:
                while True:  # one call, unless an older version's mark needs a scan
                    state = text(await arun(STATUS, self.client,
                                            (keys.stream, keys.jobs, keys.delayed),
                                            (GROUP, job_id, cursor, ADMIN_CHUNK)))
                    if not state.startswith("("):
                        return state  # type: ignore[return-value]
                    cursor = state
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
        # No consumer group yet (or the server lost its data): the blocking broker makes it.
        return await asyncio.to_thread(self.broker.status, job_id, queue)

    async def aprogress(self, job_id: str, queue: str = "default") -> bytes | None:
        with translate_errors(self.where):
            body = await self.client.get(self.broker.keys(queue).progress(job_id))
        return None if body is None else _bytes(body)

    async def acancel(
        self, job_id: str, queue: str, *, grace: float | None, ttl: float,
        result: Result | None = None, result_ttl: float = 0.0,
    ) -> CancelState:
        script_keys, args = cancel_call(self.broker.keys(queue), job_id, grace, ttl, result,
                                        result_ttl)
        with translate_errors(self.where):
            try:  # the blocking broker's script object (cancel.lua), on this loop's pool
                return cancel_state(await arun(CANCEL, self.client, script_keys, args))
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
        # No consumer group yet (or the server lost its data): the blocking broker makes it.
        return await asyncio.to_thread(lambda: self.broker.cancel(
            job_id, queue, grace=grace, ttl=ttl, result=result, result_ttl=result_ttl))

    async def aclose(self) -> None:
        await self.client.aclose()


class RedisAsyncTier(AsyncBroker):
    """The Redis broker's :class:`AsyncBroker` tier."""

    if TYPE_CHECKING:  # provided by RedisBroker
        _async_args: tuple[str, dict[str, Any]] | None

    def async_client(self) -> AsyncBrokerClient:
        broker: RedisBroker = self  # type: ignore[assignment]  # mixed into RedisBroker
        client = None
        if self._async_args is not None:
            uri, options = self._async_args
            client, _, _ = connect(uri, asynchronous=True, **options)
        if client is None:
            return ThreadedAsyncClient(broker)
        return RedisAsyncClient(broker, client)
