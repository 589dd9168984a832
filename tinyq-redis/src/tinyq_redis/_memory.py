"""Redis's eviction policy, checked once per broker (a worker's start, a producer's first use).

At ``maxmemory`` an ``allkeys-*`` policy deletes any key, a queue's stream and jobs hash
included, and tells no client: queued jobs vanish. It is refused unless the URI says
``allow_eviction=true``. A ``volatile-*`` policy deletes only keys with a TTL, which in tinyq
are results: a warning. ``noeviction`` (the default) refuses writes instead, which tinyq
reports. Managed Redis services often refuse CONFIG; INFO tells the policy there. A server
that answers neither (fakeredis) is not checked.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redis.cluster import RedisCluster

from tinyq_core.plugin import BrokerError, ConfigurationError

from ._keys import GROUP, text

logger = logging.getLogger("tinyq.redis")


def eviction_policies(client: Any) -> list[str]:
    """The ``maxmemory-policy`` of the server, or of each primary of a Cluster; empty when
    the server will not say."""
    targets: list[dict[str, Any]] = [{}]
    if isinstance(client, RedisCluster):
        targets = [{"target_nodes": node} for node in client.get_primaries()]  # type: ignore[no-untyped-call]
    policies = []
    for target in targets:
        policy: Any = None
        try:
            reply = client.config_get("maxmemory-policy", **target)
            policy = {text(k): v for k, v in reply.items()}.get("maxmemory-policy")
        except redis.ResponseError:  # CONFIG refused by ACLs, or renamed by the service
            try:
                policy = client.info("memory", **target).get("maxmemory_policy")
            except redis.ResponseError:
                policy = None
        if policy:
            policies.append(text(policy))
    return policies


def check_eviction(client: Any, where: str, allow_eviction: bool) -> None:
    """Raise ConfigurationError for a policy that evicts queued jobs; warn for one that
    evicts results (the caller checks once per broker, so the warning comes once)."""
    policies = sorted(set(eviction_policies(client)))
    if not policies:
        logger.debug("Redis at %s does not tell its maxmemory-policy (CONFIG GET and INFO "
                     "refused): not checked", where)
        return
    for policy in policies:
        if policy.startswith("allkeys-") and not allow_eviction:
            raise ConfigurationError(
                f"Redis at {where} has maxmemory-policy {policy}: at maxmemory it deletes any "
                "key, queued jobs included, and tells no one. Set maxmemory-policy noeviction "
                "(CONFIG SET maxmemory-policy noeviction, and in redis.conf or the service's "
                "settings), or give tinyq a Redis of its own; to run anyway, losing jobs when "
                "memory runs out, add allow_eviction=true to the Redis URI"
            )
        if policy.startswith("allkeys-"):
            logger.warning("Redis at %s has maxmemory-policy %s: at maxmemory it deletes "
                           "queued jobs without a word (allowed by allow_eviction=true)",
                           where, policy)
        elif policy.startswith("volatile-"):
            logger.warning("Redis at %s has maxmemory-policy %s: at maxmemory it deletes "
                           "keys with a TTL, which are job results: result() may then find "
                           "none before result_ttl. Queued jobs are safe. noeviction keeps "
                           "results too", where, policy)


def check_group_at_maxmemory(client: Any, where: str, stream: str, queue: str) -> None:
    """At maxmemory Redis refuses XGROUP CREATE before it looks for the group: find out
    whether it exists (enqueue makes it with the stream), or say what is wrong."""
    if client.exists(stream) and any(
        text(g["name"]) == GROUP for g in client.xinfo_groups(stream)
    ):
        return
    raise BrokerError(
        f"Redis at {where} is out of memory (maxmemory) and refuses to create the consumer "
        f"group of queue {queue!r}, so no worker can read that queue (it was filled before "
        "any worker started, by an older tinyq, or by hand). Free memory: raise maxmemory "
        "(CONFIG SET maxmemory ...), or delete keys; the worker goes on by itself"
    )
