"""The Lua scripts beside this module, called by SHA (EVALSHA) to keep each call small.

Redis forgets loaded scripts when it restarts; a call that meets NOSCRIPT loads the script and
runs that call again, alone, so the rest of its pipeline is not sent twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import NoScriptError, RedisError

INCLUDE = "-- #include "


def _source(name: str) -> str:
    """A script's text with each ``-- #include other.lua`` line replaced by that file: Redis
    scripts cannot call each other, so shared Lua functions are pasted in at load time."""
    lines = resources.files(__package__).joinpath(name).read_text().splitlines(keepends=True)
    return "".join(_source(line[len(INCLUDE):].strip()) if line.startswith(INCLUDE) else line
                   for line in lines)


class Lua:
    by_sha: dict[str, Lua] = {}

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = _source(name)
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()
        Lua.by_sha[self.sha] = self

    def queue(self, pipe: Any, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Add a call to ``pipe``; run it with :func:`execute`. (A Cluster pipeline refuses
        ``evalsha()``, but routes EVALSHA by its keys when given as a command.)"""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def __call__(self, client: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.text)
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


def load_all(client: Any) -> None:
    """Load every script in one round trip (on a Cluster, on every primary). A worker does so
    before its first pipelined read and again after the server lost its data: a pipeline's
    script that meets NOSCRIPT runs again only after the pipeline's blocking read returned."""
    if isinstance(client, RedisCluster):  # SCRIPT LOAD goes to every primary, not pipelined
        for lua in Lua.by_sha.values():
            client.script_load(lua.text)
        return
    pipe = client.pipeline(transaction=False)
    for lua in Lua.by_sha.values():
        pipe.script_load(lua.text)
    pipe.execute()


def _commands(pipe: Any) -> list[tuple[Any, ...]]:
    """The commands queued in ``pipe``; a Cluster pipeline keeps them in its strategy."""
    if isinstance(pipe, ClusterPipeline):
        return [command.args for command in pipe._execution_strategy.command_queue]
    return [args for args, _ in pipe.command_stack]


def execute(client: Any, pipe: Any, *, raise_on_error: bool = True) -> list[Any]:
    """``pipe.execute()``, loading scripts Redis does not know and running those calls again;
    then raises the first error, as ``execute`` does (or, without ``raise_on_error``, leaves
    each error in its command's place, as redis-py does)."""
    commands = _commands(pipe)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):
            args = commands[index]
            client.script_load(Lua.by_sha[str(args[1])].text)
            try:
                replies[index] = client.execute_command(*args)
            except RedisError as exc:  # among the replies, as in the pipeline
                replies[index] = exc
    if not raise_on_error:
        return replies
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


ENQUEUE = Lua("enqueue.lua")
SCHEDULE = Lua("schedule.lua")
SETTLE = Lua("settle.lua")
STATUS = Lua("status.lua")
MOVE_DUE = Lua("move_due.lua")
RECOVER = Lua("recover.lua")
DEAD_LETTER = Lua("dead_letter.lua")
REQUEUE_DEAD = Lua("requeue_dead.lua")
PURGE = Lua("purge.lua")
STORE_FAILURE = Lua("store_failure.lua")
RESERVE = Lua("reserve.lua")
CANCEL = Lua("cancel.lua")
